package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/internal/logbuf"
)

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func usageRows(t testing.TB, s *Store, from, to time.Time) []UsageRow {
	t.Helper()
	rows, err := s.Usage(context.Background(), from, to)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestAddUsageSums(t *testing.T) {
	t.Parallel()
	eachBackend(t, testAddUsageSums)
}

func testAddUsageSums(t *testing.T, b backend) {
	s := newStoreOn(t, b)
	ctx := context.Background()
	d := day(2025, 3, 10)
	one := UsageRow{Day: d.Add(13 * time.Hour), Client: "alice", Model: "m", Provider: "p", Key: "k1", Currency: "usd",
		Requests: 1, Input: 100, Cached: 10, CacheWrite: 5, Output: 50, Reasoning: 20, CostNanos: 1000}
	// In one batch twice (summed before the write), then once more.
	if err := s.AddUsage(ctx, []UsageRow{one, one}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUsage(ctx, []UsageRow{one}); err != nil {
		t.Fatal(err)
	}
	other := one
	other.Key = "k2"
	otherCurrency := one
	otherCurrency.Currency = "cny"
	// 23:30 in UTC-5 on the 9th is 04:30 UTC on the 10th: the same day.
	tz := one
	tz.Day = time.Date(2025, 3, 9, 23, 30, 0, 0, time.FixedZone("EST", -5*3600))
	nextDay := one
	nextDay.Day = d.Add(24 * time.Hour)
	if err := s.AddUsage(ctx, []UsageRow{other, otherCurrency, tz, nextDay}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUsage(ctx, nil); err != nil {
		t.Fatal(err)
	}
	got := usageRows(t, s, d, d.Add(48*time.Hour))
	want := []UsageRow{
		{Day: d, Client: "alice", Model: "m", Provider: "p", Key: "k1", Currency: "cny", Requests: 1, Input: 100, Cached: 10, CacheWrite: 5, Output: 50, Reasoning: 20, CostNanos: 1000},
		{Day: d, Client: "alice", Model: "m", Provider: "p", Key: "k1", Currency: "usd", Requests: 4, Input: 400, Cached: 40, CacheWrite: 20, Output: 200, Reasoning: 80, CostNanos: 4000},
		{Day: d, Client: "alice", Model: "m", Provider: "p", Key: "k2", Currency: "usd", Requests: 1, Input: 100, Cached: 10, CacheWrite: 5, Output: 50, Reasoning: 20, CostNanos: 1000},
		{Day: d.Add(24 * time.Hour), Client: "alice", Model: "m", Provider: "p", Key: "k1", Currency: "usd", Requests: 1, Input: 100, Cached: 10, CacheWrite: 5, Output: 50, Reasoning: 20, CostNanos: 1000},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d rows: %+v", len(got), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d\n got  %+v\n want %+v", i, got[i], want[i])
		}
	}
}

func TestUsageRange(t *testing.T) {
	t.Parallel()
	eachBackend(t, testUsageRange)
}

func testUsageRange(t *testing.T, b backend) {
	s := newStoreOn(t, b)
	var rows []UsageRow
	for d := 1; d <= 5; d++ {
		rows = append(rows, UsageRow{Day: day(2025, 1, d), Client: "c", Requests: int64(d)})
	}
	if err := s.AddUsage(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	noon := 12 * time.Hour
	for _, tc := range []struct {
		name     string
		from, to time.Time
		want     string // the days' request counts
	}{
		{"whole days", day(2025, 1, 2), day(2025, 1, 4), "2,3"},
		{"partial days overlap", day(2025, 1, 2).Add(noon), day(2025, 1, 4).Add(noon), "2,3,4"},
		{"one instant's day", day(2025, 1, 3).Add(noon), day(2025, 1, 3).Add(noon + time.Second), "3"},
		{"everything", day(2024, 1, 1), day(2026, 1, 1), "1,2,3,4,5"},
		{"empty range", day(2025, 1, 3), day(2025, 1, 3), ""},
		{"reversed", day(2025, 1, 4), day(2025, 1, 2), ""},
		{"other zone", time.Date(2025, 1, 2, 20, 0, 0, 0, time.FixedZone("X", -6*3600)), day(2025, 1, 4), "3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, r := range usageRows(t, s, tc.from, tc.to) {
				got = append(got, fmt.Sprint(r.Requests))
			}
			if strings.Join(got, ",") != tc.want {
				t.Errorf("got %v, want %s", got, tc.want)
			}
		})
	}
}

func TestSpent(t *testing.T) {
	t.Parallel()
	eachBackend(t, testSpent)
}

func testSpent(t *testing.T, b backend) {
	s := newStoreOn(t, b)
	if err := s.AddUsage(context.Background(), []UsageRow{
		{Day: day(2025, 1, 31), ClientID: "id-a", Client: "a", Model: "m", Currency: "usd", CostNanos: 1},
		{Day: day(2025, 2, 1), ClientID: "id-a", Client: "a", Model: "m", Currency: "usd", CostNanos: 10},
		{Day: day(2025, 2, 1), ClientID: "id-a", Client: "a", Model: "n", Currency: "usd", CostNanos: 100},
		{Day: day(2025, 2, 3), ClientID: "id-a", Client: "a", Model: "m", Provider: "p2", Currency: "usd", CostNanos: 1000},
		{Day: day(2025, 2, 3), ClientID: "id-a", Client: "a", Model: "m", Currency: "cny", CostNanos: 10000},
		{Day: day(2025, 2, 3), ClientID: "id-b", Client: "b", Model: "m", Currency: "usd", CostNanos: 100000},
		// Key a renamed "a2": its id stays.
		{Day: day(2025, 2, 4), ClientID: "id-a", Client: "a2", Model: "m", Currency: "usd", CostNanos: 1000000},
		// A new key given b's name after b was revoked: its own id.
		{Day: day(2025, 2, 4), ClientID: "id-b2", Client: "b", Model: "m", Currency: "usd", CostNanos: 10000000},
		// Written before ids were kept: by name.
		{Day: day(2025, 2, 2), Client: "c", Model: "m", Currency: "usd", CostNanos: 100000000},
		// A caller without a key: never a key's, whatever the key's name.
		{Day: day(2025, 2, 2), ClientID: NoClientID, Client: "operator", Model: "m", Currency: "usd", CostNanos: 1000000000},
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, id, client, currency string
		since                      time.Time
		want                       int64
	}{
		{"month", "id-a", "a", "usd", day(2025, 2, 1), 1001110},
		{"day", "id-a", "a", "usd", day(2025, 2, 3), 1001000},
		{"since mid-day counts that day", "id-a", "a", "usd", day(2025, 2, 1).Add(15 * time.Hour), 1001110},
		{"all", "id-a", "a", "usd", time.Time{}, 1001111},
		{"renamed: by its id", "id-a", "a2", "usd", time.Time{}, 1001111},
		{"other currency", "id-a", "a", "cny", day(2025, 2, 1), 10000},
		{"other client", "id-b", "b", "usd", day(2025, 1, 1), 100000},
		{"a new key with a revoked key's name", "id-b2", "b", "usd", day(2025, 1, 1), 10000000},
		{"rows without an id: by name", "id-c", "c", "usd", day(2025, 1, 1), 100000000},
		{"nobody", "id-d", "d", "usd", day(2025, 1, 1), 0},
		{"a key named as a caller without one", "id-o", "operator", "usd", day(2025, 1, 1), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := s.Spent(context.Background(), tc.id, tc.client, tc.currency, tc.since)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Spent = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestRecorderConcurrent(t *testing.T) {
	t.Parallel()
	eachBackend(t, testRecorderConcurrent)
}

func testRecorderConcurrent(t *testing.T, b backend) {
	s := newStoreOn(t, b)
	// A long interval: the writes in this test are Flush's and Close's.
	r := NewRecorder(s, time.Hour, nil)
	d := day(2025, 6, 1)
	const workers, each = 8, 250
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				r.Record(UsageRow{Day: d.Add(time.Duration(i) * time.Second), Client: fmt.Sprint("c", w%2), Model: "m", Currency: "usd",
					Requests: 1, Input: 3, Output: 2, CostNanos: 7})
				if i == each/2 && w == 0 {
					if err := r.Flush(context.Background()); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r.Record(UsageRow{Day: d, Client: "c0", Requests: 1000}) // after Close: dropped
	rows := usageRows(t, s, d, d.Add(time.Hour))
	if len(rows) != 2 {
		t.Fatalf("rows = %+v", rows)
	}
	for _, row := range rows {
		want := int64(workers / 2 * each)
		if row.Requests != want || row.Input != 3*want || row.Output != 2*want || row.CostNanos != 7*want || !row.Day.Equal(d) {
			t.Errorf("%s: %+v, want %d requests", row.Client, row, want)
		}
	}
}

func TestRecorderWritesEveryInterval(t *testing.T) {
	t.Parallel()
	eachBackend(t, testRecorderWritesEveryInterval)
}

func testRecorderWritesEveryInterval(t *testing.T, b backend) {
	s := newStoreOn(t, b)
	r := NewRecorder(s, 10*time.Millisecond, nil)
	defer r.Close()
	before := time.Now()
	r.Record(UsageRow{Client: "c", Requests: 1}) // zero Day: today
	// No Flush: the background write must land on its own. (The range
	// spans two days in case midnight passes meanwhile.)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if rows := usageRows(t, s, before, before.Add(48*time.Hour)); len(rows) == 1 && rows[0].Requests == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the row was never written")
		}
	}
}

func TestRecorderKeepsFailedRows(t *testing.T) {
	t.Parallel()
	eachBackend(t, testRecorderKeepsFailedRows)
}

func testRecorderKeepsFailedRows(t *testing.T, b backend) {
	s := newStoreOn(t, b)
	var logs logbuf.Buffer
	var fail atomic.Int32
	fail.Store(3)
	r := newRecorder(s, 5*time.Millisecond, slog.New(slog.NewTextHandler(&logs, nil)), func(ctx context.Context, rows []UsageRow) error {
		if fail.Add(-1) >= 0 {
			return errors.New("disk full")
		}
		return s.AddUsage(ctx, rows)
	})
	d := day(2025, 6, 1)
	r.Record(UsageRow{Day: d, Client: "c", Requests: 1, CostNanos: 5})
	// Failed writes keep the row; what arrives meanwhile is merged in.
	for deadline := time.Now().Add(10 * time.Second); fail.Load() > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the recorder never tried to write")
		}
	}
	r.Record(UsageRow{Day: d, Client: "c", Requests: 1, CostNanos: 5})
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	rows := usageRows(t, s, d, d.Add(time.Hour))
	if len(rows) != 1 || rows[0].Requests != 2 || rows[0].CostNanos != 10 {
		t.Errorf("rows = %+v, want 2 requests written once", rows)
	}
	if r.Pending() != 0 {
		t.Errorf("%d rows still pending", r.Pending())
	}
	out := logs.String()
	if !strings.Contains(out, "usage not written") || !strings.Contains(out, "disk full") {
		t.Errorf("the failure was not logged: %q", out)
	}
}

func TestRecorderFlushError(t *testing.T) {
	t.Parallel()
	eachBackend(t, testRecorderFlushError)
}

func testRecorderFlushError(t *testing.T, b backend) {
	s := newStoreOn(t, b)
	r := NewRecorder(s, time.Hour, nil)
	defer r.Close()
	d := day(2025, 6, 1)
	r.Record(UsageRow{Day: d, Client: "c", Requests: 3})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Flush(ctx); err == nil {
		t.Fatal("Flush with a cancelled context succeeded")
	}
	if r.Pending() != 1 {
		t.Fatalf("%d pending after a failed flush, want 1", r.Pending())
	}
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rows := usageRows(t, s, d, d.Add(time.Hour)); len(rows) != 1 || rows[0].Requests != 3 {
		t.Errorf("rows = %+v", rows)
	}
}

// More rows than one statement carries (PostgreSQL writes usageBatch rows
// per statement): every row lands, each once, in every chunk.
func TestAddUsageManyRows(t *testing.T) {
	t.Parallel()
	eachBackend(t, testAddUsageManyRows)
}

func testAddUsageManyRows(t *testing.T, b backend) {
	s := newStoreOn(t, b)
	n := 2*max(postgres.usageBatch, sqlite.usageBatch) + 7
	d := day(2025, 4, 1)
	var rows []UsageRow
	for i := range n {
		rows = append(rows, UsageRow{Day: d, Client: fmt.Sprintf("c%04d", i), Model: "m", Currency: "usd", Requests: 1, CostNanos: int64(i)})
	}
	// Twice, the second time in reverse and with a duplicate of each.
	if err := s.AddUsage(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	again := slices.Clone(rows)
	slices.Reverse(again)
	if err := s.AddUsage(context.Background(), append(again, rows...)); err != nil {
		t.Fatal(err)
	}
	got := usageRows(t, s, d, d.Add(time.Hour))
	if len(got) != n {
		t.Fatalf("%d rows, want %d", len(got), n)
	}
	for i, r := range got {
		if r.Client != fmt.Sprintf("c%04d", i) || r.Requests != 3 || r.CostNanos != 3*int64(i) {
			t.Fatalf("row %d = %+v, want client c%04d with 3 requests", i, r, i)
		}
	}
}

// Replicas flushing the same rows at once, each batch in its own order,
// neither deadlock nor lose a count: AddUsage writes rows in one order.
func TestConcurrentAddUsageTwoReplicas(t *testing.T) {
	t.Parallel()
	eachBackend(t, testConcurrentAddUsageTwoReplicas)
}

func testConcurrentAddUsageTwoReplicas(t *testing.T, b backend) {
	opts := b.fresh(t)
	replicas := []*Store{openAt(t, opts, nil), openAt(t, opts, nil)}
	d := day(2025, 5, 1)
	var rows []UsageRow
	for i := range 40 {
		rows = append(rows, UsageRow{Day: d, Client: fmt.Sprint("c", i%8), Model: fmt.Sprint("m", i/8), Currency: "usd", Requests: 1})
	}
	const workers, each = 6, 8
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		s := replicas[w%2]
		wg.Go(func() {
			batch := slices.Clone(rows)
			for i := range each {
				// Another order each time.
				rand.New(rand.NewPCG(uint64(w), uint64(i))).Shuffle(len(batch), func(a, b int) { batch[a], batch[b] = batch[b], batch[a] })
				errs <- s.AddUsage(context.Background(), batch)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("AddUsage: %v", err)
		}
	}
	got := usageRows(t, replicas[0], d, d.Add(time.Hour))
	if len(got) != len(rows) {
		t.Fatalf("%d rows, want %d", len(got), len(rows))
	}
	for _, r := range got {
		if r.Requests != workers*each {
			t.Errorf("%s/%s: %d requests, want %d", r.Client, r.Model, r.Requests, workers*each)
		}
	}
}
