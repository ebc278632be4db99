package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/privacy"
)

type stringer struct{ s string }

func (s stringer) String() string { return s.s }

// The JSON handler writes what slog.JSONHandler with the redactor as
// ReplaceAttr writes: the same keys, values and nesting (floats and
// durations as numbers, groups as objects, empty groups dropped), one
// object per line.
func TestJSONHandlerMatchesSlog(t *testing.T) {
	t.Parallel()
	red := privacy.NewRedactor("operator-token-abcdef0123456789")
	when := time.Date(2026, 11, 22, 17, 0, 0, 123456789, time.UTC)
	cases := []struct {
		name  string
		build func(h slog.Handler) slog.Handler
		attrs []slog.Attr
	}{
		{"request line", nil, []slog.Attr{
			slog.String("route", "openai"), slog.String("method", "POST"), slog.Int("status", 200),
			slog.Float64("duration_ms", 12.345), slog.Int64("bytes_in", 77), slog.Int64("bytes_out", 1234),
			slog.Bool("aborted", true), slog.Duration("took", 1500*time.Millisecond),
		}},
		{"strings to escape", nil, []slog.Attr{
			slog.String("q", "a\"b\\c\nd\te\x01f</script>&é\u2028"), slog.String("bad utf8", "\xff\xfe"),
		}},
		{"secrets", nil, []slog.Attr{
			slog.String("Authorization", "Bearer sk-live-abc"), slog.String("path", "/operator-token-abcdef0123456789/openai/x?key=AIzaSyD-abcdefghijklmnopqrstuv"),
			slog.Any("error", errors.New("dial https://x/?api_key=sk-query-0123456789")),
			slog.Any("url", &url.URL{Scheme: "https", Host: "x", Path: "/operator-token-abcdef0123456789/y"}),
			slog.Any("s", stringer{"bearer abcdefghijklmnop"}),
		}},
		{"numbers and times", nil, []slog.Attr{
			slog.Uint64("u", 18446744073709551615), slog.Float64("small", 1e-9), slog.Float64("big", 1e21),
			slog.Float64("int-valued", 3), slog.Time("at", when),
		}},
		{"groups", nil, []slog.Attr{
			slog.Group("g", slog.Int("a", 1), slog.Group("h", slog.String("b", "x"))), slog.Group("empty"),
			slog.Group("", slog.Int("inline", 2)),
		}},
		{"with attrs and groups", func(h slog.Handler) slog.Handler {
			return h.WithAttrs([]slog.Attr{slog.String("outer", "o")}).WithGroup("grp").WithAttrs([]slog.Attr{slog.Int("inner", 1)})
		}, []slog.Attr{slog.String("x", "y")}},
		{"empty group dropped", func(h slog.Handler) slog.Handler {
			return h.WithAttrs([]slog.Attr{slog.String("outer", "o")}).WithGroup("nothing")
		}, nil},
		{"any value", nil, []slog.Attr{slog.Any("m", map[string]int{"k": 1})}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ours, theirs bytes.Buffer
			var h1 slog.Handler = newJSONHandler(&ours, slog.LevelInfo, red)
			var h2 slog.Handler = slog.NewJSONHandler(&theirs, &slog.HandlerOptions{ReplaceAttr: red.ReplaceAttr})
			if tc.build != nil {
				h1, h2 = tc.build(h1), tc.build(h2)
			}
			for _, h := range []slog.Handler{h1, h2} {
				r := slog.NewRecord(when, slog.LevelWarn, "request", 0)
				r.AddAttrs(tc.attrs...)
				if err := h.Handle(context.Background(), r); err != nil {
					t.Fatal(err)
				}
			}
			// HandleAttrs, the server's request line, writes the same bytes.
			var direct bytes.Buffer
			var h3 slog.Handler = newJSONHandler(&direct, slog.LevelInfo, red)
			if tc.build != nil {
				h3 = tc.build(h3)
			}
			if err := h3.(*jsonHandler).HandleAttrs(when, slog.LevelWarn, "request", tc.attrs); err != nil {
				t.Fatal(err)
			}
			if direct.String() != ours.String() {
				t.Errorf("HandleAttrs: %s\nHandle:      %s", direct.String(), ours.String())
			}
			if !strings.HasSuffix(ours.String(), "}\n") || strings.Count(ours.String(), "\n") != 1 {
				t.Fatalf("not one line: %q", ours.String())
			}
			var a, b any
			if err := json.Unmarshal(ours.Bytes(), &a); err != nil {
				t.Fatalf("ours is not JSON: %v\n%s", err, ours.String())
			}
			json.Unmarshal(theirs.Bytes(), &b)
			if tc.name == "any value" {
				// slog writes the value as JSON, ours as a redacted string of it.
				if am := a.(map[string]any)["m"]; am != `{"k":1}` {
					t.Errorf("any value: %v", am)
				}
				return
			}
			if !reflect.DeepEqual(a, b) {
				t.Errorf("ours:   %s\nslog's: %s", ours.String(), theirs.String())
			}
			for _, secret := range []string{"sk-live", "operator-token", "AIzaSyD", "sk-query", "abcdefghijklmnop"} {
				if strings.Contains(ours.String(), secret) {
					t.Errorf("a secret in the line: %s", ours.String())
				}
			}
		})
	}
}

// BenchmarkJSONHandler measures the request line through each handler.
func BenchmarkJSONHandler(b *testing.B) {
	red := privacy.NewRedactor("operator-token-abcdef0123456789")
	for _, tc := range []struct {
		name string
		h    slog.Handler
	}{
		{"ours", newJSONHandler(io.Discard, slog.LevelInfo, red)},
		{"slog", slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{ReplaceAttr: red.ReplaceAttr})},
	} {
		b.Run(tc.name, func(b *testing.B) {
			log := slog.New(tc.h)
			b.ReportAllocs()
			for b.Loop() {
				log.LogAttrs(context.Background(), slog.LevelInfo, "request",
					slog.String("route", "openai"), slog.String("method", "POST"), slog.Int("status", 200),
					slog.Float64("duration_ms", 12.345), slog.Int64("bytes_in", 77), slog.Int64("bytes_out", 1234),
					slog.String("transport", "socket"))
			}
		})
		// The gateway's line: the client, the models, the provider key's
		// name, tokens and cost on top.
		b.Run(tc.name+"/gateway", func(b *testing.B) {
			log := slog.New(tc.h)
			b.ReportAllocs()
			for b.Loop() {
				log.LogAttrs(context.Background(), slog.LevelInfo, "request",
					slog.String("route", "gateway"), slog.String("method", "POST"), slog.Int("status", 200),
					slog.Float64("duration_ms", 12.345), slog.Int64("bytes_in", 77), slog.Int64("bytes_out", 1234),
					slog.String("client", "alice"), slog.String("model", "gpt-4o-mini"), slog.String("provider", "openai"),
					slog.String("provider_key", "openai#2"), slog.String("upstream_model", "gpt-4o-mini-2024-07-18"),
					slog.Int64("tokens_in", 19), slog.Int64("tokens_out", 998), slog.Float64("cost", 0.000601),
					slog.String("currency", "usd"), slog.String("transport", "socket"))
			}
		})
	}
}

// BenchmarkRequestLine is the gateway's request line as server writes it:
// the attributes in a slice, straight to the handler (HandleAttrs), against
// through a slog.Record.
func BenchmarkRequestLine(b *testing.B) {
	red := privacy.NewRedactor("operator-token-abcdef0123456789", "sk-provider-key-0123456789abcdef")
	h := newJSONHandler(io.Discard, slog.LevelInfo, red)
	attrs := []slog.Attr{
		slog.String("route", "gateway"), slog.String("method", "POST"), slog.Int("status", 200),
		slog.Float64("duration_ms", 12.345), slog.Int64("bytes_in", 77), slog.Int64("bytes_out", 1234),
		slog.String("client", "alice"), slog.String("model", "gpt-4o-mini"), slog.String("provider", "openai"),
		slog.String("provider_key", "openai#2"), slog.Int64("tokens_in", 19), slog.Int64("tokens_out", 998),
		slog.Float64("cost", 0.000601), slog.String("currency", "usd"), slog.String("transport", "socket"),
	}
	now := time.Now()
	b.Run("attrs", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.HandleAttrs(now, slog.LevelInfo, "request", attrs)
		}
	})
	b.Run("record", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rec := slog.NewRecord(now, slog.LevelInfo, "request", 0)
			rec.AddAttrs(attrs...)
			h.Handle(context.Background(), rec)
		}
	})
}

// BenchmarkRequestLineParallel is the request line as the command writes
// it, from every core at once: the handler into the log sink, which writes
// what gathered to the file (here io.Discard) in batches.
func BenchmarkRequestLineParallel(b *testing.B) {
	red := privacy.NewRedactor("operator-token-abcdef0123456789", "sk-provider-key-0123456789abcdef")
	sink := newLogSink(io.Discard)
	h := newJSONHandler(sink, slog.LevelInfo, red)
	attrs := []slog.Attr{
		slog.String("route", "openai"), slog.String("method", "POST"), slog.Int("status", 200),
		slog.Float64("duration_ms", 12.345), slog.Int64("bytes_in", 77), slog.Int64("bytes_out", 1234),
		slog.String("transport", "socket"),
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.HandleAttrs(time.Now(), slog.LevelInfo, "request", attrs)
		}
	})
	sink.Flush()
}

// appendFloat must write what strconv.AppendFloat(…, 'f', -1, 64) writes,
// for the request line's values (thousandths and billionths of an
// integer) and for any other.
func TestAppendFloatMatchesStrconv(t *testing.T) {
	check := func(f float64) {
		t.Helper()
		if got, want := string(appendFloat(nil, f)), strconv.FormatFloat(f, 'f', -1, 64); got != want {
			t.Fatalf("appendFloat(%v) = %s, want %s", f, got, want)
		}
	}
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1, 0.5, 0.001, 0.01, 0.1, 0.718, 1.2, 10, 1000.5,
		0.000027, 1e-9, 2e-9, 123456.789, 999999999999.999, 1e12, 1e15, 1e16, 4.5e6, 0.1 + 0.2, 1.0 / 3, 5e-324,
		math.MaxFloat64, -0.718, -0.000027} {
		check(f)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		check(float64(r.Int64N(1e7)) / 1000)    // duration_ms
		check(float64(r.Int64N(1e13)) / 1e9)    // cost
		check(float64(r.Int64N(1e15)) / 1e3)    // at the bound
		check(-float64(r.Int64N(1e12)) / 1e9)   // negative
		check(math.Float64frombits(r.Uint64())) // anything
		check(r.Float64() * 1e6)
	}
}
