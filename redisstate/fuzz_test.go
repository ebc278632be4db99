package redisstate

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/gateway"
)

// Messages and stored entries come from Redis, where anyone with access
// may write: decoding never panics, accepts only events a replica could
// have sent, and what it accepts encodes back to the same event.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, e := range []envelope{
		{From: "a", Ev: gateway.Event{Provider: "p", Key: "0123456789abcdef", Kind: gateway.EventCooldown, Until: time.Unix(1e9, 5), Reason: "rate limited"}},
		{From: "b", Ev: gateway.Event{Provider: "p", Kind: gateway.EventBreakerOpen, Until: time.Unix(2e9, 0)}, Expires: 2e12},
		{From: "c", Ev: gateway.Event{Provider: "p", Key: "k", Kind: gateway.EventDisable, Reason: "401"}},
	} {
		b, _ := json.Marshal(e)
		f.Add(b)
	}
	f.Add([]byte(`{"ev":{"p":"x","e":"breaker_ok","k":"k"}}`))
	f.Add([]byte(`{"ev":{"p":"","e":"enable","k":"k"}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEnvelope(b)
		if err != nil {
			return
		}
		if e.Ev.Provider == "" {
			t.Fatalf("accepted an event without a provider: %q", b)
		}
		switch e.Ev.Kind {
		case gateway.EventCooldown, gateway.EventDisable, gateway.EventEnable:
			if e.Ev.Key == "" {
				t.Fatalf("accepted a key event without a key: %q", b)
			}
		case gateway.EventBreakerOpen, gateway.EventBreakerOK:
			if e.Ev.Key != "" {
				t.Fatalf("accepted a breaker event with a key: %q", b)
			}
		default:
			t.Fatalf("accepted kind %q", e.Ev.Kind)
		}
		again, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		e2, err := decodeEnvelope(again)
		if err != nil {
			t.Fatalf("re-encoded %s does not decode: %v", again, err)
		}
		if e2.From != e.From || e2.Expires != e.Expires || e2.Ev.Provider != e.Ev.Provider || e2.Ev.Key != e.Ev.Key ||
			e2.Ev.Kind != e.Ev.Kind || e2.Ev.Reason != e.Ev.Reason || !e2.Ev.Until.Equal(e.Ev.Until) {
			t.Fatalf("round trip changed %+v into %+v", e, e2)
		}
	})
}
