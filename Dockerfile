# syntax=docker/dockerfile:1
#
# llmproxy in a container: one static binary on a minimal base.
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t llmproxy .
#   docker run -d --name llmproxy -p 127.0.0.1:8080:8080 -v llmproxy-data:/data \
#     -e AUTH_TOKEN="$(openssl rand -hex 24)" -e PRESET_AUTH_ENABLED=true llmproxy
#
# cmd/llmproxy/emptyroot_test.go builds the binary exactly as below and runs
# it in an otherwise empty root holding only the CA bundle, as a non-root
# user: that is all this image gives it.

# The version stamped into the binary (llmproxy version, /health).
ARG VERSION=dev

# ---- build: on the build machine's platform, cross-compiling to the
# target's (Go needs no emulator for that, so multi-arch builds are fast).
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG VERSION
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# CGO_ENABLED=0: a static binary that needs no libc in the final image (the
# embedded store is pure Go). -trimpath: no build machine paths in it.
# -s -w: no symbol table or DWARF (smaller; panics still have stack traces).
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/llmproxy ./cmd/llmproxy \
 && mkdir -m 0700 /out/data

# ---- run: distroless static, nonroot variant. It holds what a static Go
# binary needs and nothing else: the Debian CA bundle at
# /etc/ssl/certs/ca-certificates.crt (upstream TLS), tzdata, an /etc/passwd
# with the user nonroot (65532), and no shell or package manager for an
# intruder to use. Debian keeps its CA bundle current, which a copy taken
# from the builder into scratch would not be between our releases. Pin it
# by digest (gcr.io/distroless/static-debian12:nonroot@sha256:…) where
# builds must be reproducible.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION
LABEL org.opencontainers.image.title="llmproxy" \
      org.opencontainers.image.description="A self-hosted, privacy-focused proxy and gateway for LLM APIs" \
      org.opencontainers.image.source="https://github.com/llmproxy/llmproxy" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}"

COPY --from=build /out/llmproxy /llmproxy
# The admin panel's store. Owned by nonroot, so that a named volume mounted
# here starts out writable by llmproxy (Docker copies the ownership into it).
COPY --from=build --chown=65532:65532 /out/data /data
VOLUME ["/data"]

# Inside the container llmproxy listens on every interface, or the port
# mapping could not reach it. That is safe only with a token and closed
# presets (AUTH_TOKEN and PRESET_AUTH_ENABLED=true, or client keys on keyed
# presets), or on a private network: publish the port on 127.0.0.1 behind a
# TLS front. llmproxy warns at start, saying what anyone who reaches the
# port can do, when it listens beyond loopback while open.
ENV LLMPROXY_LISTEN=0.0.0.0:8080 \
    LLMPROXY_DATA_DIR=/data
EXPOSE 8080

USER nonroot:nonroot

# No shell or curl in the image: the binary asks /health itself, on the
# address LLMPROXY_LISTEN names (0.0.0.0 is read as 127.0.0.1).
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/llmproxy", "health"]

ENTRYPOINT ["/llmproxy"]
