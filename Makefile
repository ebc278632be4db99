# Convenience targets; each is one plain command you can also run yourself.

.PHONY: run build test vet ci bench bench-go fuzz

run:            ## run the proxy on its defaults (127.0.0.1:8080)
	go run ./cmd/llmproxy

build:          ## build ./llmproxy as the Dockerfile does: static, trimmed, the version from git
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$$(git describe --tags --always --dirty 2>/dev/null || echo dev)" ./cmd/llmproxy

test:           ## the test suite, with the race detector
	go test -race ./...

vet:
	go vet ./...

ci:             ## what CI runs
	./.ci/run

bench:          ## measure against direct, httputil and nginx; writes bench/results/latest.{md,svg}
	go run ./bench

bench-go:       ## the in-process Go benchmarks (testing.B)
	go test -run '^$$' -bench . -benchmem ./server ./socket ./privacy ./gateway ./meter ./jsonscan ./translate ./cmd/llmproxy

fuzz:           ## every fuzzer, FUZZTIME each (default 2m); CI runs them for seconds
	bash .ci/fuzz-run $${FUZZTIME:-2m}
