package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// CookieName is the session cookie.
const CookieName = "llmproxy_admin"

// Session lifetimes (OWASP's session management guidance: an idle timeout
// and an absolute one, both enforced on the server).
const (
	IdleTimeout     = 30 * time.Minute
	AbsoluteTimeout = 12 * time.Hour
)

// Login throttling: after freeFailures wrong passwords from one address,
// each further attempt waits twice as long as the one before, up to
// maxBackoff; a day without a failure forgets the address.
const (
	freeFailures = 5
	firstBackoff = 2 * time.Second
	maxBackoff   = 15 * time.Minute
	forgetAfter  = 24 * time.Hour
	maxFailures  = 10000 // addresses remembered at once
	maxSessions  = 100   // sessions at once; the oldest goes first
)

type session struct {
	created, seen time.Time
	csrf          string
	// flash is a message for the next page (after a redirect).
	flash string
	// created holds a new client key's secret until the page that shows
	// it once has been rendered.
	secret *createdSecret
}

type createdSecret struct{ Name, Secret string }

type failure struct {
	count int
	last  time.Time
	until time.Time // no attempt before
}

// randomToken returns 32 random bytes, base64url.
func randomToken() string {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// clientAddr is the address logins are throttled by: the connection's IP,
// and for IPv6 its /64, since one host usually holds a whole /64. A
// forwarding header counts only from a reverse proxy on this machine
// (a loopback peer), and then only its last X-Forwarded-For entry, the
// one that proxy wrote: anyone else could write any address there, and
// without it every client behind the proxy would share one throttle.
func clientAddr(r *http.Request) string {
	if fromLocalProxy(r) {
		if hop := lastForwardedFor(r.Header); hop.IsValid() {
			return addrKey(hop)
		}
	}
	ip, err := netip.ParseAddr(r.RemoteAddr)
	if ap, perr := netip.ParseAddrPort(r.RemoteAddr); perr == nil {
		ip, err = ap.Addr(), nil
	} else if host, _, serr := net.SplitHostPort(r.RemoteAddr); serr == nil {
		ip, err = netip.ParseAddr(host)
		if err != nil {
			return host
		}
	}
	if err != nil {
		return r.RemoteAddr
	}
	return addrKey(ip)
}

// addrKey is an address's throttling key: IPv4 as is, IPv6 by its /64.
func addrKey(ip netip.Addr) string {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// fromLocalProxy reports whether the connection comes from this machine:
// a reverse proxy in front of llmproxy (Caddy, nginx) whose forwarding
// headers describe the real client.
func fromLocalProxy(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

// lastForwardedFor is the last address of X-Forwarded-For (RFC 7239's
// predecessor; every proxy appends the peer it saw), or the zero Addr.
func lastForwardedFor(h http.Header) netip.Addr {
	values := h.Values("X-Forwarded-For")
	if len(values) == 0 {
		return netip.Addr{}
	}
	last := values[len(values)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	last = strings.TrimSpace(last)
	if ap, err := netip.ParseAddrPort(last); err == nil {
		return ap.Addr()
	}
	ip, err := netip.ParseAddr(strings.Trim(last, "[]"))
	if err != nil {
		return netip.Addr{}
	}
	return ip
}

// secureRequest reports whether the client reached the panel over TLS:
// directly, or through a reverse proxy on this machine that says so
// (X-Forwarded-Proto: https). Cookies are Secure then.
func secureRequest(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	return fromLocalProxy(r) && strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto")), "https")
}

// session returns the request's live session, or nil. touch extends its
// idle time: the health poll does not, so an open tab alone never keeps a
// session alive.
func (h *Handler) sessionFor(r *http.Request, touch bool) *session {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return nil
	}
	id := sha256.Sum256([]byte(c.Value))
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.sessions[id]
	if s == nil {
		return nil
	}
	if now.Sub(s.seen) > IdleTimeout || now.Sub(s.created) > AbsoluteTimeout {
		delete(h.sessions, id)
		return nil
	}
	if touch {
		s.seen = now
	}
	return s
}

func (h *Handler) session(r *http.Request) *session { return h.sessionFor(r, false) }

// newSession starts a session and sets its cookie.
func (h *Handler) newSession(w http.ResponseWriter, r *http.Request) {
	value := randomToken()
	now := h.now()
	h.mu.Lock()
	for id, s := range h.sessions {
		if now.Sub(s.seen) > IdleTimeout || now.Sub(s.created) > AbsoluteTimeout {
			delete(h.sessions, id)
		}
	}
	for len(h.sessions) >= maxSessions {
		var oldest [32]byte
		var at time.Time
		for id, s := range h.sessions {
			if at.IsZero() || s.created.Before(at) {
				oldest, at = id, s.created
			}
		}
		delete(h.sessions, oldest)
	}
	h.sessions[sha256.Sum256([]byte(value))] = &session{created: now, seen: now, csrf: randomToken()}
	h.mu.Unlock()
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: value, Path: "/admin", MaxAge: int(AbsoluteTimeout / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secureRequest(r),
	})
}

// dropSession forgets the request's session, if any.
func (h *Handler) dropSession(r *http.Request) {
	if c, err := r.Cookie(CookieName); err == nil {
		h.mu.Lock()
		delete(h.sessions, sha256.Sum256([]byte(c.Value)))
		h.mu.Unlock()
	}
}

// endSession forgets the session and clears its cookie.
func (h *Handler) endSession(w http.ResponseWriter, r *http.Request) {
	h.dropSession(r)
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: "", Path: "/admin", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secureRequest(r),
	})
}

// csrfOK checks the session's token, sent as the csrf form field or the
// X-CSRF-Token header, in constant time.
func csrfOK(r *http.Request, s *session) bool {
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) == 1
}

// formError says why a form could not be read, without echoing it.
func formError(err error) string {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return "it is over 1 MiB"
	}
	return "it is not a valid URL-encoded form"
}

type ctxSession struct{}

// auth lets a handler run only within a live session; a state change
// (any method but GET and HEAD) also needs the session's CSRF token.
func (h *Handler) auth(next http.HandlerFunc) http.HandlerFunc {
	return h.authWith(next, true)
}

// authPassive is auth without extending the session's idle time.
func (h *Handler) authPassive(next http.HandlerFunc) http.HandlerFunc {
	return h.authWith(next, false)
}

func (h *Handler) authWith(next http.HandlerFunc, touch bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := h.sessionFor(r, touch)
		safe := r.Method == http.MethodGet || r.Method == http.MethodHead
		if s == nil {
			if safe && r.URL.Path != "/admin/api/health" {
				http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte("not logged in, or the session has ended: log in again at /admin/login\n"))
			return
		}
		if !safe {
			r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
			// Parsed here, whichever way the token comes: the handlers
			// read r.PostForm.
			if err := r.ParseForm(); err != nil {
				http.Error(w, "the form could not be read: "+formError(err), http.StatusBadRequest)
				return
			}
			if !csrfOK(r, s) {
				http.Error(w, "missing or wrong CSRF token: reload the page and try again", http.StatusForbidden)
				return
			}
		}
		next(w, withSession(r, s))
	}
}

func withSession(r *http.Request, s *session) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), ctxSession{}, s))
}

// sessionOf returns the session auth found for r.
func sessionOf(r *http.Request) *session {
	s, _ := r.Context().Value(ctxSession{}).(*session)
	return s
}

// attempt admits a login attempt from addr, or says how long addr must
// still wait. An admitted attempt is counted as a failure at once, before
// its password is read, and a right password takes the count back
// (succeeded): attempts sent together, their bodies held back, are
// admitted one by one against the count, not all against the count before
// any of them ended.
func (h *Handler) attempt(addr string) time.Duration {
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.failures[addr]
	if f != nil && now.Before(f.until) {
		return f.until.Sub(now)
	}
	if f == nil {
		if len(h.failures) >= maxFailures {
			h.pruneFailures(now)
		}
		f = &failure{}
		h.failures[addr] = f
	} else if now.Sub(f.last) > forgetAfter {
		*f = failure{}
	}
	f.count++
	f.last = now
	if f.count >= freeFailures {
		wait := firstBackoff << min(f.count-freeFailures, 20)
		f.until = now.Add(min(wait, maxBackoff))
	}
	return 0
}

// pruneFailures forgets addresses that may try again; if that is not
// enough, the whole table (an attacker with that many addresses is not
// slowed down by it anyway).
func (h *Handler) pruneFailures(now time.Time) {
	for addr, f := range h.failures {
		if now.After(f.until) && now.Sub(f.last) > time.Hour {
			delete(h.failures, addr)
		}
	}
	if len(h.failures) >= maxFailures {
		clear(h.failures)
	}
}

func (h *Handler) succeeded(addr string) {
	h.mu.Lock()
	delete(h.failures, addr)
	h.mu.Unlock()
}

func (h *Handler) passwordOK(p string) bool {
	sum := sha256.Sum256([]byte(p))
	return subtle.ConstantTimeCompare(sum[:], h.password[:]) == 1
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	if h.session(r) != nil {
		http.Redirect(w, r, "/admin/providers", http.StatusSeeOther)
		return
	}
	h.render(w, r, http.StatusOK, "login", h.view(w, r, "", ""))
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	addr := clientAddr(r)
	v := h.view(w, r, "", "")
	if wait := h.attempt(addr); wait > 0 {
		secs := int((wait + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		v.Data = v.T("login_throttled", secs)
		h.render(w, r, http.StatusTooManyRequests, "login", v)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if !h.passwordOK(r.PostFormValue("password")) {
		h.log.Warn("admin login failed", "client", addr)
		v.Data = v.T("login_wrong")
		h.render(w, r, http.StatusUnauthorized, "login", v)
		return
	}
	h.succeeded(addr)
	// A fresh id at every login: a session id planted before it is useless.
	h.dropSession(r)
	h.newSession(w, r)
	h.log.Info("admin login", "client", addr)
	http.Redirect(w, r, "/admin/providers", http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	h.endSession(w, r)
	h.log.Info("admin logout", "client", clientAddr(r))
	http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
}

// setFlash leaves a message for the session's next page.
func (h *Handler) setFlash(r *http.Request, msg string) {
	if s := sessionOf(r); s != nil {
		h.mu.Lock()
		s.flash = msg
		h.mu.Unlock()
	}
}

func (h *Handler) takeFlash(r *http.Request) string {
	s := sessionOf(r)
	if s == nil {
		return ""
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	msg := s.flash
	s.flash = ""
	return msg
}
