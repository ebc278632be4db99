package store

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Recorder batches usage in memory and writes it every interval in one
// transaction, so that a request costs a map update, not a disk sync.
// Rows are summed per day and key while they wait, so memory grows with
// the number of distinct keys, not of requests.
type Recorder struct {
	s        *Store
	log      *slog.Logger
	interval time.Duration
	// write is s.AddUsage, or a failing one in tests.
	write func(context.Context, []UsageRow) error

	mu      sync.Mutex
	pending map[usageKey]*UsageRow
	closed  bool

	flushMu sync.Mutex // one write at a time: a failed batch is merged back before the next is taken

	stop chan struct{}
	done chan struct{}
}

// flushTimeout bounds one background write (a lock held by another
// process, a slow disk).
const flushTimeout = 30 * time.Second

// NewRecorder starts a Recorder writing to s every interval (default 2s
// when ≤ 0), logging failed writes to log (default: discarded). Close it
// before the Store.
func NewRecorder(s *Store, interval time.Duration, log *slog.Logger) *Recorder {
	return newRecorder(s, interval, log, s.AddUsage)
}

func newRecorder(s *Store, interval time.Duration, log *slog.Logger, write func(context.Context, []UsageRow) error) *Recorder {
	if interval <= 0 {
		interval = 2 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Recorder{
		s: s, log: log, interval: interval, write: write,
		pending: map[usageKey]*UsageRow{},
		stop:    make(chan struct{}), done: make(chan struct{}),
	}
	go r.loop()
	return r
}

// Record adds a row to the next write. A zero Day means now. Rows
// recorded after Close are dropped.
func (r *Recorder) Record(row UsageRow) {
	k := row.key(r.s.now)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.merge(k, row)
}

// merge adds row under k; r.mu is held.
func (r *Recorder) merge(k usageKey, row UsageRow) {
	if p, ok := r.pending[k]; ok {
		p.add(row)
		return
	}
	// A copy, so that row itself does not escape: a Record that adds to
	// an existing key allocates nothing.
	p := new(UsageRow)
	*p = row
	p.Day = dayTime(k.day)
	r.pending[k] = p
}

// Flush writes what is pending now. When the write fails the rows stay
// pending, merged with what was recorded meanwhile, for the next try.
func (r *Recorder) Flush(ctx context.Context) error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.mu.Lock()
	batch := r.pending
	r.pending = make(map[usageKey]*UsageRow, len(batch))
	r.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	rows := make([]UsageRow, 0, len(batch))
	for _, row := range batch {
		rows = append(rows, *row)
	}
	err := r.write(ctx, rows)
	if err != nil {
		r.mu.Lock()
		for k, row := range batch {
			r.merge(k, *row)
		}
		r.mu.Unlock()
	}
	return err
}

// Pending is the number of rows waiting for a write.
func (r *Recorder) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}

func (r *Recorder) loop() {
	defer close(r.done)
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
			if err := r.Flush(ctx); err != nil {
				// Rows hold names and counts only; the error is the
				// database's, which never holds a bound value.
				r.log.Warn("store: usage not written yet; kept for the next try", "rows", r.Pending(), "err", err)
			}
			cancel()
		}
	}
}

// Close stops the background writes and writes what is pending. It does
// not close the Store.
func (r *Recorder) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	close(r.stop)
	<-r.done
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	return r.Flush(ctx)
}
