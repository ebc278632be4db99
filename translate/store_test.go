package translate

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"

	"github.com/llmproxy/llmproxy/providertest"
)

// clock is a test clock that only moves when told.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }
func newClock() *clock                   { c := &clock{}; c.ns.Store(time.Unix(1767225600, 0).UnixNano()); return c }
func storeWith(c *clock, ttl time.Duration, n int) *Store {
	s := NewStore(ttl, n)
	s.now = c.now
	return s
}

func TestSDKPreviousResponseID(t *testing.T) {
	t.Parallel()
	for _, streaming := range []bool{false, true} {
		t.Run(map[bool]string{false: "unary", true: "stream"}[streaming], func(t *testing.T) {
			t.Parallel()
			c := newClock()
			store := storeWith(c, time.Minute, 0)
			respond := func(r providertest.FaultRequest) ([]providertest.Delta, string) {
				if strings.Contains(string(r.Body), "my name") {
					return []providertest.Delta{providertest.Text("You are Ada.")}, ""
				}
				return []providertest.Delta{providertest.Reasoning("A name."), providertest.Text("Hello Ada!")}, ""
			}
			up, _, client := setup(t, providertest.OpenAI{Respond: respond}, Options{Store: store})
			ask := func(params responses.ResponseNewParams) (*responses.Response, error) {
				if !streaming {
					return client.Responses.New(context.Background(), params)
				}
				s := stream(t, client, params)
				if s.err != nil {
					return nil, s.err
				}
				return s.final, nil
			}
			first, err := ask(responses.ResponseNewParams{
				Model:        "glm-4.7",
				Instructions: openai.String("Be kind."),
				Input:        responses.ResponseNewParamsInputUnion{OfString: openai.String("I am Ada.")},
			})
			if err != nil {
				t.Fatal(err)
			}
			if !stored(first) {
				t.Errorf("store is false in a kept answer")
			}
			kept, ok := store.Get(first.ID, "")
			if !ok {
				t.Fatalf("%s was not kept", first.ID)
			}
			var back responses.Response
			if err := json.Unmarshal(kept, &back); err != nil || back.ID != first.ID || back.OutputText() != "Hello Ada!" {
				t.Errorf("Get: %v %s", err, kept)
			}

			second, err := ask(responses.ResponseNewParams{
				Model:              "glm-4.7",
				PreviousResponseID: openai.String(first.ID),
				Input:              responses.ResponseNewParamsInputUnion{OfString: openai.String("What is my name?")},
			})
			if err != nil {
				t.Fatal(err)
			}
			if second.OutputText() != "You are Ada." || second.PreviousResponseID != first.ID {
				t.Errorf("second: %q previous %q", second.OutputText(), second.PreviousResponseID)
			}
			_, bodies := received(t, up)
			// The stored conversation comes first; the earlier
			// instructions do not carry over (as on OpenAI), and the
			// reasoning item is not sent back.
			var got []string
			for _, m := range bodies[1].Messages {
				got = append(got, m.Role+":"+str(m.Content))
			}
			want := []string{"user:I am Ada.", "assistant:Hello Ada!", "user:What is my name?"}
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("second request: %q, want %q", got, want)
			}

			// A chain: the third turn sees all of it.
			third, err := ask(responses.ResponseNewParams{
				Model:              "glm-4.7",
				PreviousResponseID: openai.String(second.ID),
				Input:              responses.ResponseNewParamsInputUnion{OfString: openai.String("And my name again?")},
			})
			if err != nil {
				t.Fatal(err)
			}
			_, bodies = received(t, up)
			if n := len(bodies[2].Messages); n != 5 {
				t.Errorf("third request has %d messages", n)
			}

			// store: false keeps nothing.
			notKept, err := ask(responses.ResponseNewParams{
				Model: "glm-4.7", Store: openai.Bool(false),
				Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("I am Bob.")},
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := store.Get(notKept.ID, ""); ok || stored(notKept) {
				t.Errorf("store: false was kept")
			}

			// After the time limit, it is gone.
			c.advance(time.Minute)
			if _, ok := store.Get(third.ID, ""); ok {
				t.Errorf("kept past its time")
			}
			_, err = ask(responses.ResponseNewParams{
				Model:              "glm-4.7",
				PreviousResponseID: openai.String(third.ID),
				Input:              responses.ResponseNewParamsInputUnion{OfString: openai.String("Still there?")},
			})
			e := sdkError(t, err)
			if e.StatusCode != 400 || e.Param != "previous_response_id" || e.Code != codeNotFound {
				t.Errorf("expired: %d %q %q", e.StatusCode, e.Param, e.Code)
			}
			if n := len(up.Requests()); n != 4 {
				t.Errorf("provider got %d requests, want 4", n)
			}
		})
	}
}

func TestStoreLimits(t *testing.T) {
	t.Parallel()
	c := newClock()
	s := storeWith(c, time.Minute, 3)
	for i := range 5 {
		s.put(fmt.Sprint(i), "", []byte{byte('0' + i)}, nil)
		c.advance(time.Second)
	}
	for i, want := range []bool{false, false, true, true, true} {
		if _, ok := s.Get(fmt.Sprint(i), ""); ok != want {
			t.Errorf("entry %d kept %v, want %v (the oldest go first)", i, ok, want)
		}
	}
	if !s.Delete("3", "") || s.Delete("3", "") || s.Len() != 2 {
		t.Errorf("Delete, Len %d", s.Len())
	}
	// Entry i was stored at i seconds; it is now 5s. At 62s entry 2 is
	// a minute old, entry 4 not yet.
	c.advance(57 * time.Second)
	if _, ok := s.Get("4", ""); !ok {
		t.Errorf("entry 4 expired early")
	}
	if _, ok := s.Get("2", ""); ok {
		t.Errorf("entry 2 outlived its minute")
	}
	c.advance(2 * time.Second)
	if s.Len() != 0 {
		t.Errorf("Len %d after every entry's time", s.Len())
	}
	if d := NewStore(0, 0); d.ttl != DefaultStoreTTL || d.max != DefaultStoreEntries {
		t.Errorf("defaults %v %d", d.ttl, d.max)
	}
}

// An entry is its owner's: to another it is not there, for reading,
// deleting or continuing alike.
func TestStoreOwners(t *testing.T) {
	t.Parallel()
	s := NewStore(time.Minute, 0)
	s.put("resp_a", "key:alice", []byte(`{"id":"resp_a"}`), []json.RawMessage{json.RawMessage(`{"role":"user","content":"secret"}`)})
	for _, owner := range []string{"key:bob", "", "operator"} {
		if _, ok := s.Get("resp_a", owner); ok {
			t.Errorf("%q reads alice's response", owner)
		}
		if _, ok := s.items("resp_a", owner); ok {
			t.Errorf("%q continues alice's response", owner)
		}
		if s.Delete("resp_a", owner) {
			t.Errorf("%q deletes alice's response", owner)
		}
	}
	if b, ok := s.Get("resp_a", "key:alice"); !ok || string(b) != `{"id":"resp_a"}` {
		t.Errorf("alice's own: %v %s", ok, b)
	}
	if _, ok := s.items("resp_a", "key:alice"); !ok {
		t.Errorf("alice cannot continue her own")
	}
	if !s.Delete("resp_a", "key:alice") || s.Len() != 0 {
		t.Errorf("alice cannot delete her own")
	}
}

// WithOwner binds a request: its answer is stored as the owner's, and its
// previous_response_id finds only the owner's.
func TestOwnerOfARequest(t *testing.T) {
	t.Parallel()
	store := NewStore(time.Minute, 0)
	next := &stub{body: chunks(chunkHead+`{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}`, `[DONE]`)}
	tr := &Transport{Next: next, Options: Options{Store: store}}
	send := func(owner, body string) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(WithOwner(context.Background(), owner), "POST", "https://example.test/v1/responses", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	var first struct{ ID string }
	if err := json.NewDecoder(send("key:alice", `{"input":"I am Ada."}`).Body).Decode(&first); err != nil || first.ID == "" {
		t.Fatalf("first answer: %v", err)
	}
	if _, ok := store.Get(first.ID, "key:alice"); !ok {
		t.Fatalf("not stored as alice's")
	}
	if _, ok := store.Get(first.ID, ""); ok {
		t.Errorf("stored as everyone's")
	}
	calls := next.calls()
	resp := send("key:bob", `{"input":"Who am I?","previous_response_id":"`+first.ID+`"}`)
	if e := readError(t, resp); resp.StatusCode != 400 || e.Error.Code != codeNotFound || next.calls() != calls {
		t.Errorf("bob continues alice's: %d %+v", resp.StatusCode, e)
	}
	if resp := send("key:alice", `{"input":"Who am I?","previous_response_id":"`+first.ID+`"}`); resp.StatusCode != 200 {
		t.Errorf("alice continues her own: %d", resp.StatusCode)
	}
}

func TestStoreConcurrent(t *testing.T) {
	t.Parallel()
	s := NewStore(time.Minute, 50)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				id := fmt.Sprintf("%d-%d", g, i)
				s.put(id, "", []byte("{}"), nil)
				s.Get(id, "")
				s.items(fmt.Sprintf("%d-%d", g, i/2), "")
				if i%7 == 0 {
					s.Delete(id, "")
				}
			}
		})
	}
	wg.Wait()
	if n := s.Len(); n > 50 {
		t.Errorf("%d entries kept, limit 50", n)
	}
}
