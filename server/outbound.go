package server

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// outbound is the context of a request forward sends upstream: the client
// request's values, and a cancellation of its own. It is canceled when the
// client leaves, until the response is a stream handed off (handoff.go),
// which outlives the handler and its request's context; and when the
// forward or the relay is done.
//
// It stands in for context.WithCancel(context.WithoutCancel(r.Context()))
// plus a context.AfterFunc on r.Context(), which cost a request some
// fifteen allocations and a microsecond. What makes it cheaper:
//
//   - On a connection of ours (conn), the client leaving is seen where
//     net/http sees it, a failed read or write on the connection, and the
//     connection cancels the request it carries (conn.follow): nothing is
//     registered with r.Context(). Elsewhere (HTTP/2, another
//     http.Server, a request made in process from a context with a
//     deadline of its own) it follows r.Context() with context.AfterFunc
//     (follow). Since the connection cancels before net/http does,
//     whoever asks whether a failure was the client's asks clientLeft,
//     not r.Context().Err().
//   - It has an AfterFunc method, which the context package uses for the
//     contexts derived from it (net/http's transport derives one per
//     request) and the socket transport calls directly for its abort. The
//     functions run in the goroutine that cancels, not in goroutines of
//     their own as context.AfterFunc's do: they are a derived context's
//     cancel and the socket transport's connection close, which neither
//     block nor take a lock a canceler holds.
type outbound struct {
	parent context.Context // the client's request context: its values, not its cancellation

	mu     sync.Mutex
	done   chan struct{} // made by the first Done, or closedChan
	err    error
	afters []*afterFunc
	inline [2]*afterFunc // afters' first room: a request registers one or two
}

// closedChan is Done's channel for an outbound canceled before anyone
// asked for it.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func newOutbound(parent context.Context) *outbound {
	o := &outbound{parent: parent}
	o.afters = o.inline[:0]
	return o
}

func (o *outbound) Deadline() (time.Time, bool) { return time.Time{}, false }

// Value is the parent's, but for the key under which a context of the
// context package finds its nearest cancelable ancestor (context.Cause
// looks for it): the parent's cancellation is not o's. That is what
// context.WithoutCancel does; a lookup through it allocates, and forward's
// transports look up a value on every request.
func (o *outbound) Value(key any) any {
	if key == cancelCtxKey {
		return nil
	}
	return o.parent.Value(key)
}

// cancelCtxKey is the context package's own key, as it asks a context's
// Value for it (TestOutboundContext fails if this stops finding it).
var cancelCtxKey = func() any {
	var p keyProbe
	context.Cause(&p)
	return p.key
}()

// keyProbe is a context that notes the key it is asked for.
type keyProbe struct {
	context.Context
	key any
}

func (p *keyProbe) Value(key any) any {
	p.key = key
	return nil
}

// Err reports a cancellation: context.Cause asks a context that is not
// canceled for nothing more.
func (p *keyProbe) Err() error { return context.Canceled }

func (o *outbound) Done() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done == nil {
		if o.err != nil {
			o.done = closedChan
		} else {
			o.done = make(chan struct{})
		}
	}
	return o.done
}

func (o *outbound) Err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// afterFunc is one function registered with AfterFunc.
type afterFunc struct {
	o *outbound
	f func()
}

// AfterFunc arranges for f to run when o is canceled, in the canceling
// goroutine; at once, in a goroutine of its own, when o is canceled
// already. stop reports whether it kept f from running.
func (o *outbound) AfterFunc(f func()) (stop func() bool) {
	a := &afterFunc{o: o, f: f}
	o.mu.Lock()
	if o.err != nil {
		o.mu.Unlock()
		go f()
		return a.stop
	}
	o.afters = append(o.afters, a)
	o.mu.Unlock()
	return a.stop
}

func (a *afterFunc) stop() bool {
	o := a.o
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, x := range o.afters {
		if x == a {
			last := len(o.afters) - 1
			o.afters[i], o.afters[last] = o.afters[last], nil
			o.afters = o.afters[:last]
			return true
		}
	}
	return false
}

// cancel cancels o and runs what AfterFunc registered; it may be called
// more than once, and from any goroutine.
func (o *outbound) cancel() {
	o.mu.Lock()
	if o.err != nil {
		o.mu.Unlock()
		return
	}
	o.err = context.Canceled
	if o.done == nil {
		o.done = closedChan
	} else {
		close(o.done)
	}
	var run [len(o.inline)]*afterFunc
	fs := append(run[:0], o.afters...)
	clear(o.afters)
	o.afters = o.afters[:0]
	o.mu.Unlock()
	for _, a := range fs {
		a.f()
	}
}

// link ties an outbound request to the client's: the client leaving
// cancels it, until unlink.
type link struct {
	o    *outbound
	c    *conn       // the client's connection, which follows o; nil: stop
	stop func() bool // else: context.AfterFunc's, on r.Context()
}

// follow links o to the client of r: through its connection when r's
// context is canceled only as net/http's own request context is (values
// added to it change nothing), else through context.AfterFunc — HTTP/2,
// another http.Server, a request made in process with a deadline or a
// cancel of its own.
func follow(r *http.Request, o *outbound) link {
	ctx := r.Context()
	if c := connOf(ctx); c != nil && r.ProtoMajor == 1 && c.req != nil && ctx.Value(cancelCtxKey) == c.req {
		c.follow(o)
		return link{c: c, o: o}
	}
	return link{o: o, stop: context.AfterFunc(ctx, o.cancel)}
}

// unlink stops the client's leaving from canceling o; it reports false
// when the client left already (o is canceled, or about to be).
func (l link) unlink() bool {
	if l.c != nil {
		return l.c.unfollow(l.o)
	}
	return l.stop()
}

// clientLeft reports whether the client of r left: its request's context
// is canceled, or a read or a write on its connection failed. On
// llmproxy's own connections the second comes first: the connection
// cancels the outbound request before net/http cancels r's context, so an
// upstream call that fails for it must not be taken for the upstream's
// failure.
func clientLeft(r *http.Request) bool {
	if r.Context().Err() != nil {
		return true
	}
	c := connOf(r.Context())
	return c != nil && c.gone.Load()
}
