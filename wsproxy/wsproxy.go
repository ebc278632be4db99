// Package wsproxy relays WebSockets between a client and an upstream, message
// by message, with github.com/coder/websocket: the upstream is dialled first
// (so a refused handshake reaches the client as an HTTP error, not a dead
// socket), then the client is accepted with the subprotocol the upstream
// chose, then two pumps copy messages (keeping text/binary) while a keeper
// pings both sides and watches for idleness. Close codes and reasons pass
// through both ways; when either side drops, the other gets a close frame.
package wsproxy

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Options configure a Relay. Zero fields take the defaults named.
type Options struct {
	// ReadLimit bounds one message, each way. Default 32 MiB: realtime
	// audio frames are large (coder/websocket's own default is 32 KiB).
	ReadLimit int64
	// IdleTimeout closes a session in which no message crossed either way
	// for this long. Default 10m.
	IdleTimeout time.Duration
	// PingInterval is how often both sides are pinged; a ping unanswered
	// within the interval (at least a second) ends the session. Default 30s.
	PingInterval time.Duration
	// HandshakeTimeout bounds the upstream handshake. Default 30s.
	HandshakeTimeout time.Duration
}

// Relay runs WebSocket sessions and closes them all on Shutdown.
type Relay struct {
	opts Options

	mu       sync.Mutex
	sessions map[*session]struct{}
	closing  bool
	wg       sync.WaitGroup
}

// New returns a Relay.
func New(opts Options) *Relay {
	if opts.ReadLimit <= 0 {
		opts.ReadLimit = 32 << 20
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 10 * time.Minute
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = 30 * time.Second
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = 30 * time.Second
	}
	return &Relay{opts: opts, sessions: make(map[*session]struct{})}
}

// Dial says where and how to reach the upstream.
type Dial struct {
	// Target is the ws:// or wss:// URL.
	Target *url.URL
	// Header is sent with the upstream handshake, already filtered by the
	// privacy policy. The WebSocket handshake fields are the dialer's own.
	Header http.Header
	// Transport carries the handshake (socket or fetch, behind the address
	// guard for generic targets).
	Transport http.RoundTripper
	// Subprotocols are offered upstream: the client's, as the caller
	// filtered them (an llmproxy credential never leaves in one).
	Subprotocols []string
}

// HandshakeError is an upstream that answered the handshake with an HTTP
// response other than 101. The caller passes it on to the client.
type HandshakeError struct {
	StatusCode int
	Header     http.Header
	Body       []byte // at most the first KiB
}

func (e *HandshakeError) Error() string {
	return "upstream refused the WebSocket handshake with HTTP " + http.StatusText(e.StatusCode)
}

// Result describes a finished session, for the request log.
type Result struct {
	BytesIn  int64  // client → upstream
	BytesOut int64  // upstream → client
	Code     int    // the close code the client received (0 if none)
	Reason   string // why the session ended, for the log (never message text)
}

// IsUpgrade reports whether r asks for a WebSocket.
func IsUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
}

// ValidClientHandshake reports whether r is a WebSocket handshake that
// Accept will take (RFC 6455 §4.2.1), so that nothing is dialled for one it
// would refuse.
func ValidClientHandshake(r *http.Request) bool {
	if r.Method != http.MethodGet || !r.ProtoAtLeast(1, 1) || !IsUpgrade(r) || r.Header.Get("Sec-WebSocket-Version") != "13" {
		return false
	}
	// One key, 16 random bytes in base64 (§4.1), as Accept checks.
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return false
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keys[0]))
	return err == nil && len(b) == 16
}

// Subprotocols returns the subprotocols the client offered, in order.
func Subprotocols(r *http.Request) []string {
	var out []string
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

var noRedirects = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// ClientHandshakeError is Accept refusing the client's handshake: it has
// answered the client already.
type ClientHandshakeError struct{ Err error }

func (e *ClientHandshakeError) Error() string { return "client handshake: " + e.Err.Error() }
func (e *ClientHandshakeError) Unwrap() error { return e.Err }

// Serve dials d, accepts the client on w and relays until the session ends.
// An error before the upgrade has written nothing, but a
// *ClientHandshakeError: the caller answers with HTTP (a *HandshakeError
// carries the upstream's own answer). After the upgrade Serve returns the
// session's Result and a nil error.
func (r *Relay) Serve(w http.ResponseWriter, req *http.Request, d Dial) (Result, error) {
	ctx, cancel := context.WithTimeout(req.Context(), r.opts.HandshakeTimeout)
	defer cancel()
	up, resp, err := websocket.Dial(ctx, d.Target.String(), &websocket.DialOptions{
		HTTPClient:      &http.Client{Transport: d.Transport, CheckRedirect: noRedirects},
		HTTPHeader:      d.Header,
		Subprotocols:    d.Subprotocols,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			he := &HandshakeError{StatusCode: resp.StatusCode, Header: resp.Header}
			if resp.Body != nil {
				he.Body, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<10))
			}
			return Result{}, he
		}
		return Result{}, unwrapDialError(err)
	}

	accept := &websocket.AcceptOptions{
		// The server checked the origin against its CORS policy already.
		InsecureSkipVerify: true,
		CompressionMode:    websocket.CompressionDisabled,
	}
	if sp := up.Subprotocol(); sp != "" {
		accept.Subprotocols = []string{sp}
	}
	client, err := websocket.Accept(w, req, accept)
	if err != nil {
		// Accept answered the client itself (ValidClientHandshake lets
		// through only what it takes, so this is rare).
		up.Close(websocket.StatusGoingAway, "client handshake failed")
		return Result{}, &ClientHandshakeError{Err: err}
	}

	s := r.newSession(client, up)
	if s == nil { // shutting down
		client.Close(websocket.StatusGoingAway, "server shutting down")
		up.Close(websocket.StatusGoingAway, "server shutting down")
		return Result{Code: int(websocket.StatusGoingAway), Reason: "shutting down"}, nil
	}
	defer r.endSession(s)
	return s.run(), nil
}

// unwrapDialError digs the transport's error out of coder/websocket's and
// net/http's wrappers, whose messages hold the URL (and with it any key in
// the query): the caller classifies and logs the inner error only.
func unwrapDialError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (r *Relay) newSession(client, up *websocket.Conn) *session {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		return nil
	}
	s := &session{relay: r, client: client, up: up, stop: make(chan ending, 1)}
	s.touch()
	r.sessions[s] = struct{}{}
	r.wg.Add(1)
	return s
}

func (r *Relay) endSession(s *session) {
	r.mu.Lock()
	delete(r.sessions, s)
	r.mu.Unlock()
	r.wg.Done()
}

// Open returns the number of sessions running.
func (r *Relay) Open() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sessions)
}

// Shutdown sends every open session's client and upstream a close 1001
// (going away) and waits for the sessions to end, or for ctx.
func (r *Relay) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.closing = true
	for s := range r.sessions {
		s.end(ending{why: endShutdown})
	}
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// session is one relayed WebSocket.
type session struct {
	relay    *Relay
	client   *websocket.Conn
	up       *websocket.Conn
	stop     chan ending
	lastMsg  atomic.Int64 // unix nanoseconds of the last message either way
	bytesIn  atomic.Int64
	bytesOut atomic.Int64
}

func (s *session) touch() { s.lastMsg.Store(time.Now().UnixNano()) }

type endWhy int

const (
	endClientRead endWhy = iota // reading the client failed or it sent close
	endUpstreamRead
	endClientWrite // writing to the client failed
	endUpstreamWrite
	endClientPing // a ping went unanswered
	endUpstreamPing
	endIdle
	endShutdown
)

type ending struct {
	why endWhy
	err error
}

// end asks the session to end; the first reason wins.
func (s *session) end(e ending) {
	select {
	case s.stop <- e:
	default:
	}
}

func (s *session) run() Result {
	limit := s.relay.opts.ReadLimit
	s.client.SetReadLimit(limit)
	s.up.SetReadLimit(limit)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); s.pump(ctx, s.client, s.up, &s.bytesIn, endClientRead, endUpstreamWrite) }()
	go func() { defer wg.Done(); s.pump(ctx, s.up, s.client, &s.bytesOut, endUpstreamRead, endClientWrite) }()
	go func() { defer wg.Done(); s.keep(ctx) }()

	e := <-s.stop
	res := s.close(e)
	cancel()
	// Make sure both connections are gone, so that every goroutine ends.
	s.client.CloseNow()
	s.up.CloseNow()
	wg.Wait()
	res.BytesIn, res.BytesOut = s.bytesIn.Load(), s.bytesOut.Load()
	return res
}

// close sends each side the close frame the ending calls for.
func (s *session) close(e ending) Result {
	code, reason := websocket.CloseStatus(e.err), closeReason(e.err)
	switch e.why {
	case endClientRead:
		if code != -1 { // the client closed: pass its code on
			s.up.Close(sendable(code), reason)
			return Result{Code: int(code), Reason: "client closed"}
		}
		s.up.Close(websocket.StatusGoingAway, "client went away")
		return Result{Reason: "client went away"}
	case endUpstreamRead:
		if code != -1 { // the upstream closed: pass its code on
			s.client.Close(sendable(code), reason)
			return Result{Code: int(sendable(code)), Reason: "upstream closed"}
		}
		s.client.Close(websocket.StatusBadGateway, "upstream connection lost")
		return Result{Code: int(websocket.StatusBadGateway), Reason: "upstream connection lost"}
	case endClientWrite, endClientPing:
		s.up.Close(websocket.StatusGoingAway, "client went away")
		return Result{Reason: "client went away"}
	case endUpstreamWrite, endUpstreamPing:
		s.client.Close(websocket.StatusBadGateway, "upstream connection lost")
		return Result{Code: int(websocket.StatusBadGateway), Reason: "upstream connection lost"}
	case endIdle:
		s.closeBoth(websocket.StatusGoingAway, "idle timeout")
		return Result{Code: int(websocket.StatusGoingAway), Reason: "idle timeout"}
	default: // endShutdown
		s.closeBoth(websocket.StatusGoingAway, "server shutting down")
		return Result{Code: int(websocket.StatusGoingAway), Reason: "server shutting down"}
	}
}

func (s *session) closeBoth(code websocket.StatusCode, reason string) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.client.Close(code, reason) }()
	go func() { defer wg.Done(); s.up.Close(code, reason) }()
	wg.Wait()
}

// sendable maps close codes that must not appear on the wire (RFC 6455
// §7.4.1: 1005 no status, 1006 abnormal, 1015 TLS) to 1000.
func sendable(code websocket.StatusCode) websocket.StatusCode {
	switch code {
	case websocket.StatusNoStatusRcvd, websocket.StatusAbnormalClosure, websocket.StatusTLSHandshake:
		return websocket.StatusNormalClosure
	}
	return code
}

func closeReason(err error) string {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Reason
	}
	return ""
}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// pump copies messages from src to dst, one at a time, keeping each
// message's type, and streams large messages instead of buffering them.
func (s *session) pump(ctx context.Context, src, dst *websocket.Conn, n *atomic.Int64, readFail, writeFail endWhy) {
	for {
		typ, r, err := src.Reader(ctx)
		if err != nil {
			s.end(ending{readFail, err})
			return
		}
		s.touch()
		w, err := dst.Writer(ctx, typ)
		if err != nil {
			s.end(ending{writeFail, err})
			return
		}
		bp := buffers.Get().(*[]byte)
		for {
			m, rerr := r.Read(*bp)
			if m > 0 {
				if _, werr := w.Write((*bp)[:m]); werr != nil {
					buffers.Put(bp)
					s.end(ending{writeFail, werr})
					return
				}
				n.Add(int64(m))
			}
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				buffers.Put(bp)
				s.end(ending{readFail, rerr})
				return
			}
		}
		buffers.Put(bp)
		if err := w.Close(); err != nil {
			s.end(ending{writeFail, err})
			return
		}
		s.touch()
	}
}

// keep pings both sides and ends an idle session.
func (s *session) keep(ctx context.Context) {
	interval := s.relay.opts.PingInterval
	pongWait := max(interval, time.Second)
	idle := s.relay.opts.IdleTimeout
	tick := min(interval, idle/4)
	t := time.NewTicker(tick)
	defer t.Stop()
	lastPing := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if now.Sub(time.Unix(0, s.lastMsg.Load())) >= idle {
				s.end(ending{why: endIdle})
				return
			}
			if now.Sub(lastPing) < interval {
				continue
			}
			lastPing = now
			for _, side := range []struct {
				c   *websocket.Conn
				why endWhy
			}{{s.client, endClientPing}, {s.up, endUpstreamPing}} {
				pctx, cancel := context.WithTimeout(ctx, pongWait)
				err := side.c.Ping(pctx)
				cancel()
				if err != nil {
					if ctx.Err() == nil {
						s.end(ending{side.why, err})
					}
					return
				}
			}
		}
	}
}
