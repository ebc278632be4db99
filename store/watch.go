package store

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Watch timings.
const (
	// pollInterval is how often Watch reads the revision on SQLite, where
	// there is no notification (and only one process writes anyway).
	pollInterval = time.Second
	// listenCheck is how long the PostgreSQL LISTEN connection may stay
	// silent before Watch checks it with a query: a connection that a
	// firewall dropped without a word would otherwise wait for ever, and
	// the same query catches a change whose notification was lost.
	listenCheck = 30 * time.Second
	// Reconnection backoff after a lost LISTEN connection: doubled at
	// each failure up to the maximum, with jitter so that replicas that
	// lost the server together do not all come back at the same instant.
	backoffMin = 100 * time.Millisecond
	backoffMax = 5 * time.Second
	// watchQueryTimeout bounds connecting, LISTEN and each revision
	// read: a dead peer that sends no reset would otherwise hold them
	// until TCP gives up, minutes later.
	watchQueryTimeout = 15 * time.Second
)

// Watch calls fn with the new revision each time the store's revision
// moves past the last one fn was given (at first: the revision when Watch
// started), whichever replica made the Change — this one included. It
// returns nil when ctx ends, and cancelling ctx is the only way to stop
// it: cancel before Close.
//
// On PostgreSQL it holds a connection of its own that LISTENs on
// NotifyChannel, so fn runs within moments of the commit. When that
// connection drops it reconnects (backoff 100ms doubling to 5s), and calls
// fn once after reconnecting if the revision moved meanwhile: no change
// is missed, though several may arrive as one call. On SQLite it reads
// the revision every second.
//
// fn runs on Watch's goroutine, one call at a time; while it runs, newer
// revisions wait.
func (s *Store) Watch(ctx context.Context, fn func(revision int64)) error {
	return s.watch(ctx, revisionUnknown, fn)
}

// WatchFrom is Watch starting from a known revision: fn is called as soon
// as the store is past since. A replica that reads Revision before the
// Entries it applies at start, then calls WatchFrom with it, misses no
// change made between its start and Watch's.
func (s *Store) WatchFrom(ctx context.Context, since int64, fn func(revision int64)) error {
	if since < 0 {
		return errors.New("store: WatchFrom needs a revision ≥ 0")
	}
	return s.watch(ctx, since, fn)
}

// revisionUnknown: Watch reads the revision to start from.
const revisionUnknown = -1

func (s *Store) watch(ctx context.Context, since int64, fn func(int64)) error {
	if fn == nil {
		return errors.New("store: Watch needs a function to call")
	}
	w := &watcher{last: since, fn: fn}
	if s.pg == nil {
		s.poll(ctx, w)
	} else {
		s.listen(ctx, w)
	}
	return nil
}

// watcher is the last revision fn was given, and fn.
type watcher struct {
	last int64 // revisionUnknown until the first read
	fn   func(int64)
}

// saw reports a revision read or notified; fn runs when it is new.
func (w *watcher) saw(rev int64) {
	switch {
	case w.last == revisionUnknown:
		w.last = rev
	case rev > w.last:
		w.last = rev
		w.fn(rev)
	}
}

func (s *Store) poll(ctx context.Context, w *watcher) {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	failing := false
	for {
		rev, err := s.Revision(ctx)
		switch {
		case err == nil:
			failing = false
			w.saw(rev)
		case ctx.Err() == nil && !failing:
			failing = true
			s.log.Warn("store: cannot read the revision; retrying every second", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// listen keeps a LISTEN connection up until ctx ends.
func (s *Store) listen(ctx context.Context, w *watcher) {
	backoff := backoffMin
	down := false // the first failure of an outage is a warning, the rest debug
	for {
		err := s.listenOnce(ctx, w, func() {
			backoff = backoffMin
			if down {
				down = false
				s.log.Info("store: receiving change notifications again")
			}
		})
		if ctx.Err() != nil {
			return
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		if !down {
			down = true
			s.log.Warn("store: lost the change notifications from PostgreSQL; reconnecting", "err", redact(err, s.secrets))
		} else {
			s.log.Debug("store: reconnecting for change notifications", "in", wait, "err", redact(err, s.secrets))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		backoff = min(2*backoff, backoffMax)
	}
}

// listenOnce connects, LISTENs, reads the revision (what committed before
// the LISTEN took effect has no notification coming), and then follows
// the notifications until the connection fails or ctx ends.
func (s *Store) listenOnce(ctx context.Context, w *watcher, listening func()) error {
	cfg := s.pg.Copy()
	if cfg.RuntimeParams["application_name"] == "" {
		// Tells operators what this idle connection is in pg_stat_activity.
		cfg.RuntimeParams["application_name"] = "llmproxy-watch"
	}
	// Bounded, so that a server that swallows packets is retried (with
	// backoff) instead of waited for.
	connectCtx, cancel := context.WithTimeout(ctx, watchQueryTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(connectCtx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(connectCtx, "LISTEN "+NotifyChannel); err != nil {
		return err
	}
	check := func() error {
		queryCtx, cancel := context.WithTimeout(ctx, watchQueryTimeout)
		defer cancel()
		var rev int64
		if err := conn.QueryRow(queryCtx, `SELECT revision FROM store_state WHERE id = 1`).Scan(&rev); err != nil {
			return err
		}
		w.saw(rev)
		return nil
	}
	if err := check(); err != nil {
		return err
	}
	listening()
	for {
		waitCtx, cancel := context.WithTimeout(ctx, s.listenCheck)
		_, err := conn.WaitForNotification(waitCtx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && pgconn.Timeout(err):
			// Silence: is the connection still there, and did we miss
			// anything?
			if err := check(); err != nil {
				return err
			}
			continue
		case err != nil:
			return err
		}
		// The payload is the new revision, but any client of the
		// database may NOTIFY on this channel: the revision is read
		// from the table, which also folds a burst of changes into one
		// call.
		if err := check(); err != nil {
			return err
		}
	}
}
