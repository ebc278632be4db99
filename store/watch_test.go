package store

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/internal/logbuf"
)

// watchTimeout bounds every wait for a Watch callback: generous, since
// the tests assert that it comes, not how fast (the latency is logged).
const watchTimeout = 15 * time.Second

// revisions collects Watch's calls.
type revisions struct {
	ch chan int64
}

func newRevisions() *revisions { return &revisions{ch: make(chan int64, 100)} }

func (r *revisions) fn(rev int64) { r.ch <- rev }

// next waits for the next call and returns its revision.
func (r *revisions) next(t *testing.T, what string) int64 {
	t.Helper()
	select {
	case rev := <-r.ch:
		return rev
	case <-time.After(watchTimeout):
		t.Fatalf("Watch did not report %s within %v", what, watchTimeout)
		return 0
	}
}

// startWatch runs s.WatchFrom(since) (Watch when since < 0) until the test
// ends, and checks that it returns nil when its context is cancelled.
func startWatch(t *testing.T, s *Store, since int64, fn func(int64)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		if since < 0 {
			done <- s.Watch(ctx, fn)
		} else {
			done <- s.WatchFrom(ctx, since, fn)
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Watch returned %v, want nil when its context ends", err)
			}
		case <-time.After(watchTimeout):
			t.Error("Watch did not return after its context was cancelled")
		}
	})
}

// Two Stores on one database are two replicas: a Change through one is
// read by the other, and the other's Watch reports it.
func TestTwoReplicas(t *testing.T) {
	t.Parallel()
	eachBackend(t, testTwoReplicas)
}

func testTwoReplicas(t *testing.T, b backend) {
	opts := b.fresh(t)
	a, other := openAt(t, opts, testKey), openAt(t, opts, testKey)
	got := newRevisions()
	// From revision 0: the first change is reported whether it lands
	// before or after Watch is listening.
	startWatch(t, other, 0, got.fn)

	change(t, a, func(tx *Tx) error { return tx.PutModel(model("first")) })
	if rev := got.next(t, "the first change"); rev != 1 {
		t.Fatalf("Watch reported revision %d, want 1", rev)
	}
	if names := modelNames(entries(t, other)); strings.Join(names, ",") != "first" {
		t.Errorf("the other replica reads models %v", names)
	}
	// Watch is surely following now: this one comes by NOTIFY on
	// PostgreSQL (its 30s check is far away), by polling on SQLite.
	change(t, a, func(tx *Tx) error {
		return tx.PutProvider(provider("p", ProviderKey{Name: "k", Secret: secretA}))
	})
	committed := time.Now()
	if rev := got.next(t, "the second change"); rev != 2 {
		t.Fatalf("Watch reported revision %d, want 2", rev)
	}
	t.Logf("%s: the other replica's Watch fired %v after the commit", b.name, time.Since(committed).Round(time.Microsecond))
	e := entries(t, other)
	if p := findProvider(t, e, "p"); len(p.Keys) != 1 || p.Keys[0].Secret != secretA {
		t.Errorf("the other replica reads provider %+v", p)
	}
	// A rolled-back change moves nothing: the next one is 3.
	_ = a.Change(context.Background(), "test", func(tx *Tx) error {
		tx.PutModel(model("dropped"))
		return fmt.Errorf("refused")
	})
	change(t, a, func(tx *Tx) error { return tx.DeleteModel("first") })
	if rev := got.next(t, "the third change"); rev != 3 {
		t.Fatalf("Watch reported revision %d, want 3", rev)
	}
	// The replica's own changes are reported too.
	change(t, other, func(tx *Tx) error { return tx.PutModel(model("own")) })
	if rev := got.next(t, "its own change"); rev != 4 {
		t.Fatalf("Watch reported revision %d, want 4", rev)
	}
}

// WatchFrom an older revision reports the current one at once, then
// follows.
func TestWatchFrom(t *testing.T) {
	t.Parallel()
	eachBackend(t, testWatchFrom)
}

func testWatchFrom(t *testing.T, b backend) {
	s := newStoreOn(t, b)
	change(t, s, func(tx *Tx) error { return tx.PutModel(model("a")) })
	change(t, s, func(tx *Tx) error { return tx.PutModel(model("b")) })
	got := newRevisions()
	startWatch(t, s, 1, got.fn)
	if rev := got.next(t, "a revision past since"); rev != 2 {
		t.Errorf("WatchFrom(1) reported %d, want 2", rev)
	}
	change(t, s, func(tx *Tx) error { return tx.PutModel(model("c")) })
	if rev := got.next(t, "the next change"); rev != 3 {
		t.Errorf("reported %d, want 3", rev)
	}
}

// Which revisions reach fn: the first one read is where Watch starts
// (not reported), then only newer ones, each once.
func TestWatcherReportsNewerOnly(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		since int64
		saw   []int64
		want  []int64
	}{
		{"start is not reported", revisionUnknown, []int64{5}, nil},
		{"newer after the start", revisionUnknown, []int64{5, 6, 8}, []int64{6, 8}},
		{"same and older ignored", revisionUnknown, []int64{5, 5, 4, 6, 6, 2}, []int64{6}},
		{"from a known revision", 3, []int64{3, 5, 5, 7}, []int64{5, 7}},
		{"from zero", 0, []int64{0, 1}, []int64{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got []int64
			w := &watcher{last: tc.since, fn: func(rev int64) { got = append(got, rev) }}
			for _, rev := range tc.saw {
				w.saw(rev)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("fn got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestWatchRefusesBadArguments(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	if err := s.Watch(context.Background(), nil); err == nil {
		t.Error("Watch without a function was accepted")
	}
	if err := s.WatchFrom(context.Background(), -1, func(int64) {}); err == nil {
		t.Error("WatchFrom(-1) was accepted")
	}
}

// Concurrent Changes through two replicas all succeed, one at a time: the
// revision row's lock serialises them across processes on PostgreSQL,
// the database lock (and busy timeout) on SQLite.
func TestConcurrentChangesTwoReplicas(t *testing.T) {
	t.Parallel()
	eachBackend(t, testConcurrentChangesTwoReplicas)
}

func testConcurrentChangesTwoReplicas(t *testing.T, b backend) {
	opts := b.fresh(t)
	replicas := []*Store{openAt(t, opts, testKey), openAt(t, opts, testKey)}
	const workers, each = 8, 5
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		s := replicas[w%2]
		wg.Go(func() {
			for i := range each {
				name := fmt.Sprintf("m-%d-%d", w, i)
				errs <- s.Change(context.Background(), "w", func(tx *Tx) error {
					// Read, then write what was read: with a lost
					// serialisation, two changes would read the
					// same count.
					e, err := tx.Entries()
					if err != nil {
						return err
					}
					m := model(name)
					m.ContextWindow = len(e.Models)
					if err := tx.PutModel(m); err != nil {
						return err
					}
					return tx.Audit("model.put", name, "")
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Change: %v", err)
		}
	}
	if got := revision(t, replicas[1]); got != workers*each {
		t.Errorf("revision %d, want %d", got, workers*each)
	}
	e := entries(t, replicas[0])
	if len(e.Models) != workers*each {
		t.Fatalf("%d models, want %d", len(e.Models), workers*each)
	}
	seen := map[int]bool{}
	for _, m := range e.Models {
		if seen[m.ContextWindow] {
			t.Errorf("two changes saw %d models before theirs: they overlapped", m.ContextWindow)
		}
		seen[m.ContextWindow] = true
	}
}

// Somebody else's NOTIFY on the channel does not fool Watch: it reads the
// revision itself.
func TestWatchIgnoresForeignNotify(t *testing.T) {
	t.Parallel()
	srv := postgresServer(t)
	dbURL := srv.newDatabase(t)
	s := openAt(t, Options{DatabaseURL: dbURL}, testKey)
	got := newRevisions()
	startWatch(t, s, 0, got.fn)
	// Once a change is reported, Watch is listening.
	change(t, s, func(tx *Tx) error { return tx.PutModel(model("a")) })
	if rev := got.next(t, "the first change"); rev != 1 {
		t.Fatalf("reported %d", rev)
	}
	srv.exec(t, dbURL, "NOTIFY "+NotifyChannel+", '999'")
	srv.exec(t, dbURL, "NOTIFY "+NotifyChannel+", 'hello'")
	change(t, s, func(tx *Tx) error { return tx.PutModel(model("b")) })
	if rev := got.next(t, "the second change"); rev != 2 {
		t.Fatalf("after foreign notifications Watch reported %d, want 2", rev)
	}
}

// When the LISTEN connection drops, Watch reconnects with backoff and
// reports the change whose notification it missed meanwhile.
func TestWatchReconnects(t *testing.T) {
	t.Parallel()
	srv := postgresServer(t)
	dbURL := srv.newDatabase(t)
	direct := openAt(t, Options{DatabaseURL: dbURL}, testKey)
	proxy := newCutProxy(t, fmt.Sprintf("127.0.0.1:%d", srv.port))
	u, _ := url.Parse(dbURL)
	u.Host = proxy.addr()
	var logs logbuf.Buffer
	watched := openWith(t, Options{DatabaseURL: u.String(), SecretKey: testKey,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})

	got := newRevisions()
	startWatch(t, watched, 0, got.fn)
	change(t, direct, func(tx *Tx) error { return tx.PutModel(model("a")) })
	if rev := got.next(t, "the first change"); rev != 1 {
		t.Fatalf("reported %d", rev)
	}

	proxy.cut()
	// While Watch cannot connect, a change commits: its notification
	// goes nowhere.
	change(t, direct, func(tx *Tx) error { return tx.PutModel(model("b")) })
	// Let Watch fail to reconnect a few times (with backoff) first.
	waitFor(t, "reconnection attempts", func() bool { return proxy.refused.Load() >= 3 })
	proxy.resume()
	if rev := got.next(t, "the change missed while disconnected"); rev != 2 {
		t.Fatalf("after reconnecting Watch reported %d, want 2", rev)
	}
	// And it follows notifications again.
	change(t, direct, func(tx *Tx) error { return tx.PutModel(model("c")) })
	if rev := got.next(t, "a change after reconnecting"); rev != 3 {
		t.Fatalf("reported %d, want 3", rev)
	}
	waitFor(t, "the log of the recovery", func() bool {
		return strings.Contains(logs.String(), "receiving change notifications again")
	})
	out := logs.String()
	if !strings.Contains(out, "lost the change notifications") {
		t.Errorf("the lost connection was not logged:\n%s", out)
	}
	if strings.Contains(out, pgPassword) {
		t.Errorf("the log shows the database password:\n%s", out)
	}
}

// A database that cannot be reached: Watch keeps trying, says so without
// the password, and still returns when its context ends.
func TestWatchUnreachable(t *testing.T) {
	t.Parallel()
	// Open needs a working database; Watch then loses it for good.
	srv := postgresServer(t)
	proxy := newCutProxy(t, fmt.Sprintf("127.0.0.1:%d", srv.port))
	u, _ := url.Parse(srv.newDatabase(t))
	u.Host = proxy.addr()
	var logs logbuf.Buffer
	s := openWith(t, Options{DatabaseURL: u.String(), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	proxy.cut()
	startWatch(t, s, -1, func(int64) { t.Error("a revision was reported from an unreachable database") })
	waitFor(t, "the warning", func() bool { return strings.Contains(logs.String(), "lost the change notifications") })
	waitFor(t, "retries", func() bool { return proxy.refused.Load() >= 2 })
	if strings.Contains(logs.String(), pgPassword) {
		t.Errorf("the log shows the password:\n%s", logs.String())
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(watchTimeout); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// cutProxy relays TCP to a server until cut: then it drops every
// connection and refuses new ones (accepts and closes them at once,
// counting them) until resumed.
type cutProxy struct {
	ln      net.Listener
	target  string
	down    atomic.Bool
	refused atomic.Int64

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	p.wg.Go(p.serve)
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			p.refused.Add(1)
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		p.wg.Go(func() { io.Copy(up, c); up.Close() })
		p.wg.Go(func() { io.Copy(c, up); c.Close() })
	}
}

func (p *cutProxy) cut() {
	p.down.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *cutProxy) resume() { p.down.Store(false) }

// A Change queued behind another replica's gives up at its context's
// deadline, and leaves both replicas usable: the waiting connection is
// dropped (and its transaction with it), not returned to the pool
// half-way.
func TestChangeWaitingForAnotherReplicaTimesOut(t *testing.T) {
	t.Parallel()
	opts := backends[1].fresh(t)
	a, b := openAt(t, opts, testKey), openAt(t, opts, testKey)
	holding, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- a.Change(context.Background(), "a", func(tx *Tx) error {
			close(holding)
			<-release
			return tx.PutModel(model("from-a"))
		})
	}()
	<-holding
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	err := b.Change(ctx, "b", func(tx *Tx) error { return tx.PutModel(model("from-b")) })
	cancel()
	if err == nil {
		t.Fatal("a Change ran while another replica's held the revision row")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the first replica's change: %v", err)
	}
	for i := range 5 { // more than one pooled connection's worth
		change(t, b, func(tx *Tx) error { return tx.PutModel(model(fmt.Sprint("b", i))) })
	}
	if got := revision(t, a); got != 6 {
		t.Errorf("revision %d, want 6 (the timed-out change left no trace)", got)
	}
	for _, m := range entries(t, a).Models {
		if m.Name == "from-b" {
			t.Error("the timed-out change was saved")
		}
	}
}

// A LISTEN connection that stays silent is checked by reading the
// revision: the connection survives the waits that time out, and a change
// whose notification never came is still reported.
func TestWatchChecksWhenSilent(t *testing.T) {
	t.Parallel()
	srv := postgresServer(t)
	dbURL := srv.newDatabase(t)
	var logs logbuf.Buffer
	s := openWith(t, Options{DatabaseURL: dbURL, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	s.listenCheck = 20 * time.Millisecond
	got := newRevisions()
	startWatch(t, s, 0, got.fn)
	change(t, s, func(tx *Tx) error { return tx.PutModel(model("a")) })
	if rev := got.next(t, "the first change"); rev != 1 {
		t.Fatalf("reported %d", rev)
	}
	// Several checks pass with nothing to report.
	time.Sleep(10 * s.listenCheck)
	// A revision bump without NOTIFY: what a lost notification looks like.
	srv.exec(t, dbURL, "UPDATE store_state SET revision = 7")
	if rev := got.next(t, "the silent change"); rev != 7 {
		t.Fatalf("reported %d, want 7", rev)
	}
	change(t, s, func(tx *Tx) error { return tx.PutModel(model("b")) })
	if rev := got.next(t, "a later change"); rev != 8 {
		t.Fatalf("reported %d, want 8", rev)
	}
	// All on the first connection: the timed-out waits did not break it.
	if out := logs.String(); out != "" {
		t.Errorf("Watch lost its connection:\n%s", out)
	}
}
