package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/providertest"
)

type testKey struct{}

func isDone(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	default:
		return false
	}
}

// The outbound context carries the client request's values, not its
// cancellation, and is canceled on its own.
func TestOutboundContext(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.WithValue(context.Background(), testKey{}, "v"))
	o := newOutbound(parent)
	if got := o.Value(testKey{}); got != "v" {
		t.Fatalf("Value = %v, want the parent's", got)
	}
	if _, ok := o.Deadline(); ok {
		t.Fatal("an outbound context has no deadline")
	}
	done := o.Done()
	cancelParent()
	if isDone(o) || o.Err() != nil {
		t.Fatal("the parent's cancellation reached the outbound context directly")
	}
	o.cancel()
	o.cancel() // twice is fine
	select {
	case <-done:
	default:
		t.Fatal("Done's channel from before the cancel is not closed")
	}
	if !errors.Is(o.Err(), context.Canceled) || !isDone(o) {
		t.Fatalf("after cancel: Err = %v, done = %v", o.Err(), isDone(o))
	}
	if !errors.Is(context.Cause(o), context.Canceled) {
		t.Fatalf("Cause = %v", context.Cause(o))
	}

	// context.Cause asks for the context package's own key, which must not
	// find the parent's cancellation and its cause.
	errParent := errors.New("the parent's cause")
	parent2, cancelParent2 := context.WithCancelCause(context.Background())
	o3 := newOutbound(parent2)
	cancelParent2(errParent)
	o3.cancel()
	if err := context.Cause(o3); err != context.Canceled {
		t.Fatalf("Cause = %v, want context.Canceled: the context package's key found the parent", err)
	}

	// Canceled before anyone asked for Done.
	o2 := newOutbound(context.Background())
	o2.cancel()
	if !isDone(o2) {
		t.Fatal("Done after an early cancel is not closed")
	}
}

func TestOutboundAfterFunc(t *testing.T) {
	o := newOutbound(context.Background())
	var ran [4]atomic.Int32
	stops := make([]func() bool, len(ran))
	for i := range ran {
		stops[i] = o.AfterFunc(func() { ran[i].Add(1) })
	}
	if !stops[1]() || stops[1]() {
		t.Fatal("stop before cancel: want true once, then false")
	}
	o.cancel()
	o.cancel()
	for i := range ran {
		want := int32(1)
		if i == 1 {
			want = 0
		}
		if got := ran[i].Load(); got != want {
			t.Errorf("function %d ran %d times, want %d", i, got, want)
		}
	}
	if stops[0]() {
		t.Error("stop after the function ran reported true")
	}
	if n := len(o.afters); n != 0 {
		t.Errorf("%d functions still registered after cancel", n)
	}

	// Registered on a canceled context: runs at once, on its own goroutine.
	late := make(chan struct{})
	if stop := o.AfterFunc(func() { close(late) }); stop() {
		t.Error("stop of a function registered after cancel reported true")
	}
	select {
	case <-late:
	case <-time.After(5 * time.Second):
		t.Fatal("a function registered after cancel never ran")
	}
}

// Contexts derived from an outbound one (net/http's transport derives one
// per request) register through its AfterFunc: canceled with it, and
// unregistered when canceled first, so nothing is left behind.
func TestOutboundDerivedContexts(t *testing.T) {
	o := newOutbound(context.Background())
	first, cancelFirst := context.WithCancel(o)
	if len(o.afters) != 1 {
		t.Fatalf("WithCancel registered %d functions, want 1 (else the context package started a goroutine)", len(o.afters))
	}
	cancelFirst()
	if len(o.afters) != 0 {
		t.Fatalf("a canceled child left %d functions registered", len(o.afters))
	}
	if errors.Is(o.Err(), context.Canceled) || !isDone(first) {
		t.Fatal("the child's cancel reached the parent, or not the child")
	}

	child, cancelChild := context.WithCancel(o)
	defer cancelChild()
	ran := make(chan struct{})
	context.AfterFunc(o, func() { close(ran) })
	o.cancel()
	if !isDone(child) {
		t.Fatal("the child was not canceled with its outbound parent")
	}
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("context.AfterFunc on an outbound context never ran")
	}
}

// The connection cancels the request it follows when a read or a write on
// it fails — not on a deadline — and not after unfollow.
func TestConnFollowsTheClient(t *testing.T) {
	newConn := func() (*conn, net.Conn) {
		a, b := net.Pipe()
		return &conn{Conn: a}, b
	}

	// A read deadline (net/http's abortPendingRead) is not the client leaving.
	c, peer := newConn()
	o := newOutbound(context.Background())
	c.follow(o)
	c.SetReadDeadline(time.Unix(1, 0))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read past its deadline succeeded")
	}
	if o.Err() != nil {
		t.Fatal("a read deadline canceled the request")
	}
	c.SetReadDeadline(time.Time{})

	// The client closing: the read fails, the request is canceled.
	peer.Close()
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read from a closed pipe succeeded")
	}
	if !errors.Is(o.Err(), context.Canceled) {
		t.Fatal("the client leaving did not cancel the request")
	}
	if c.unfollow(o) {
		t.Fatal("unfollow after the client left reported true")
	}
	// A request that comes to a connection whose client left is canceled at once.
	o2 := newOutbound(context.Background())
	c.follow(o2)
	if o2.Err() == nil {
		t.Fatal("following on a connection whose client left did not cancel")
	}

	// A write failing is the client leaving too.
	c, peer = newConn()
	o = newOutbound(context.Background())
	c.follow(o)
	peer.Close()
	if _, err := c.Write([]byte("x")); err == nil {
		t.Fatal("write to a closed pipe succeeded")
	}
	if o.Err() == nil {
		t.Fatal("a failed write did not cancel the request")
	}

	// Unfollowed: the client leaving no longer cancels it.
	c, peer = newConn()
	o = newOutbound(context.Background())
	c.follow(o)
	if !c.unfollow(o) {
		t.Fatal("unfollow of a live request reported false")
	}
	peer.Close()
	c.Read(make([]byte, 1))
	if o.Err() != nil {
		t.Fatal("the client leaving canceled a request no longer followed")
	}
}

// The connection follows a request whose context is net/http's own for
// the request it carries, values added or not; the context package does
// when the context can be canceled otherwise (a request made in process
// with a deadline of its own, as the admin panel's test), for HTTP/2, and
// when no handler of the connection runs.
func TestFollowWhichWay(t *testing.T) {
	c := &conn{}
	base, cancel := context.WithCancel(context.WithValue(context.Background(), connKey{}, c))
	defer cancel()
	c.req = base.Value(cancelCtxKey)
	r := httptest.NewRequest("POST", "/v1/chat/completions", nil)
	r = r.WithContext(context.WithValue(base, testKey{}, "v"))

	o := newOutbound(r.Context())
	if l := follow(r, o); l.c != c || !l.unlink() {
		t.Fatal("the connection does not follow a request of its own")
	}

	timed, cancelTimed := context.WithTimeout(r.Context(), 20*time.Millisecond)
	defer cancelTimed()
	o = newOutbound(timed)
	l := follow(r.WithContext(timed), o)
	if l.c != nil {
		t.Fatal("the connection follows a request with a deadline of its own")
	}
	select {
	case <-o.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the request's own deadline did not cancel the outbound request")
	}

	h2 := r.Clone(r.Context())
	h2.ProtoMajor = 2
	if l := follow(h2, newOutbound(h2.Context())); l.c != nil {
		t.Fatal("the connection follows an HTTP/2 request")
	} else {
		l.unlink()
	}
	c.req = nil
	if l := follow(r, newOutbound(r.Context())); l.c != nil {
		t.Fatal("the connection follows a request while none of its own runs")
	} else {
		l.unlink()
	}
}

// A client that leaves while its request waits for the upstream's answer,
// or while a body that is not handed off is relayed, cancels the upstream
// request at once: on llmproxy's own connections (the connection sees the
// client leave) and under another http.Server (the request's context does).
func TestClientLeavingCancelsTheUpstream(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"socket", "fetch"} {
		for _, when := range []string{"before the answer", "mid-body"} {
			for _, server := range []string{"llmproxy", "another http.Server"} {
				t.Run(mode+"/"+when+"/"+server, func(t *testing.T) {
					t.Parallel()
					arrived, upstreamDone := make(chan struct{}), make(chan struct{})
					fake := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						io.Copy(io.Discard, r.Body)
						close(arrived)
						if when == "mid-body" {
							// Not an event stream: relayed in the handler.
							w.Header().Set("Content-Type", "application/json")
							io.WriteString(w, `{"partial":`)
							w.(http.Flusher).Flush()
						}
						untilCanceled(r, upstreamDone)
					}), &providertest.Options{HTTP2: true})
					cfg := testConfig(t, map[string]string{"openai": fake.URL})
					cfg.Transport = mode
					h := start(t, cfg)
					url := h.URL
					if server != "llmproxy" {
						other := &http.Server{Handler: h.srv}
						ln, err := net.Listen("tcp", "127.0.0.1:0")
						if err != nil {
							t.Fatal(err)
						}
						go other.Serve(ln)
						defer other.Close()
						url = "http://" + ln.Addr().String()
					}

					ctx, cancel := context.WithCancel(context.Background())
					req, _ := http.NewRequestWithContext(ctx, "POST", url+"/openai/v1/chat/completions", strings.NewReader("{}"))
					errc := make(chan error, 1)
					go func() {
						resp, err := h.client.Do(req)
						if err == nil {
							_, err = io.ReadFull(resp.Body, make([]byte, len(`{"partial":`)))
							if err == nil {
								err = errors.New("got the partial body")
							}
							resp.Body.Close()
						}
						errc <- err
					}()
					if when == "before the answer" {
						select {
						case <-arrived:
						case <-time.After(5 * time.Second):
							t.Fatal("the request never reached the upstream")
						}
						cancel()
					}
					select {
					case err := <-errc:
						if when == "mid-body" && err.Error() != "got the partial body" {
							t.Fatalf("client: %v", err)
						}
					case <-time.After(5 * time.Second):
						t.Fatal("client still waiting")
					}
					cancel()
					select {
					case <-upstreamDone:
					case <-time.After(5 * time.Second):
						t.Fatal("upstream request still running 5s after the client left")
					}
					// Logged as the client's doing, not the upstream's: the
					// connection cancels the upstream call before net/http
					// cancels the request's context.
					want := `"status":499,`
					if when == "mid-body" {
						want = `"error":"client left mid-response"`
					}
					if logs := h.waitLog(1); !strings.Contains(logs, want) {
						t.Fatalf("the request line lacks %s:\n%s", want, logs)
					}
				})
			}
		}
	}
}

// BenchmarkOutboundContext is one request's context work in forward and
// the socket transport: the outbound context made and tied to the client,
// the transport's abort registered and stopped, the context canceled; and
// the same done with the context package (the way it was done before).
func BenchmarkOutboundContext(b *testing.B) {
	abort := func() {}
	req, _ := http.NewRequest("POST", "http://127.0.0.1/", nil)
	b.Run("outbound", func(b *testing.B) {
		c := &conn{}
		b.ReportAllocs()
		for b.Loop() {
			reqCtx, cancelReq := context.WithCancel(context.WithValue(context.Background(), connKey{}, c))
			r := req.WithContext(reqCtx)
			o := newOutbound(r.Context())
			l := follow(r, o)
			out := r.WithContext(o)
			stop := o.AfterFunc(abort)
			stop()
			l.unlink()
			o.cancel()
			cancelReq()
			_ = out
		}
	})
	b.Run("context package", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			reqCtx, cancelReq := context.WithCancel(context.Background())
			r := req.WithContext(reqCtx)
			ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
			unlink := context.AfterFunc(r.Context(), cancel)
			out := r.WithContext(ctx)
			stop := context.AfterFunc(out.Context(), abort)
			stop()
			unlink()
			cancel()
			cancelReq()
		}
	})
}
