package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// UsageRow is usage per UTC day, by client key, model, provider, provider
// key and currency. It holds names, the client key's id and counts only:
// never a secret, a prompt or a completion.
type UsageRow struct {
	Day time.Time // UTC midnight
	// ClientID is the client key's access.Key.ID (12 hex digits of its
	// secret's digest): what a budget is restored by, as a key may be
	// renamed and a revoked key's name taken again. NoClientID for a
	// caller without a key (the operator, anonymous); "" only in rows
	// written before schema v3.
	ClientID                                                          string
	Client, Model, Provider, Key, Currency                            string
	Requests, Input, Cached, CacheWrite, Output, Reasoning, CostNanos int64
}

// NoClientID is the ClientID of usage by a caller without a client key.
// It is not "", the mark of rows written before ids were kept, which count
// for a key of their name: a key named "operator" is not charged the
// operator's usage.
const NoClientID = "-"

// usageKey is a row's identity: the table's primary key, the day as a
// number so that Record, on every request, formats nothing.
type usageKey struct {
	day                                              int64 // days since 1970-01-01, UTC
	clientID, client, model, provider, key, currency string
}

const dayLayout = "2006-01-02"

// dayNumber is t's UTC day; the zero time counts as now.
func dayNumber(t time.Time, now func() time.Time) int64 {
	if t.IsZero() {
		t = now()
	}
	y, m, d := t.UTC().Date()
	// Unix time has no leap seconds: a midnight is a multiple of 86400.
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

func dayTime(n int64) time.Time { return time.Unix(n*86400, 0).UTC() }

func dayString(n int64) string { return dayTime(n).Format(dayLayout) }

func (r UsageRow) key(now func() time.Time) usageKey {
	return usageKey{dayNumber(r.Day, now), r.ClientID, r.Client, r.Model, r.Provider, r.Key, r.Currency}
}

func (r *UsageRow) add(o UsageRow) {
	r.Requests += o.Requests
	r.Input += o.Input
	r.Cached += o.Cached
	r.CacheWrite += o.CacheWrite
	r.Output += o.Output
	r.Reasoning += o.Reasoning
	r.CostNanos += o.CostNanos
}

// AddUsage adds rows to the stored counters (an upsert per day and key),
// all in one transaction. Rows with the same day and key are summed first;
// a zero Day means today.
func (s *Store) AddUsage(ctx context.Context, rows []UsageRow) error {
	if len(rows) == 0 {
		return nil
	}
	// PostgreSQL refuses an upsert that touches one row twice in a
	// statement, and summing here makes one write per row anyway.
	merged := make(map[usageKey]*UsageRow, len(rows))
	order := make([]usageKey, 0, len(rows))
	for _, r := range rows {
		k := r.key(s.now)
		if m, ok := merged[k]; ok {
			m.add(r)
			continue
		}
		merged[k] = &r
		order = append(order, k)
	}
	// One order for every writer: on PostgreSQL two replicas upserting
	// the same rows in different orders could deadlock.
	slices.SortFunc(order, usageKey.compare)
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: usage: %w", err)
	}
	defer tx.Rollback()
	// Rows per statement (the dialect's usageBatch): on PostgreSQL each
	// statement is a round trip; SQLite, in process, is fastest with one
	// prepared single-row statement run again and again.
	batch := s.d.usageBatch
	var full *sql.Stmt // prepared on the first chunk of batch rows
	args := make([]any, 0, usageColumns*min(len(order), batch))
	for start := 0; start < len(order); start += batch {
		chunk := order[start:min(start+batch, len(order))]
		args = args[:0]
		for _, k := range chunk {
			r := merged[k]
			args = append(args, dayString(k.day), k.clientID, k.client, k.model, k.provider, k.key, k.currency,
				r.Requests, r.Input, r.Cached, r.CacheWrite, r.Output, r.Reasoning, r.CostNanos)
		}
		if len(chunk) < batch {
			_, err = tx.ExecContext(ctx, usageUpsert(len(chunk)), args...)
		} else {
			if full == nil {
				if full, err = tx.PrepareContext(ctx, usageUpsert(batch)); err != nil {
					return fmt.Errorf("store: usage: %w", err)
				}
				defer full.Close()
			}
			_, err = full.ExecContext(ctx, args...)
		}
		if err != nil {
			return fmt.Errorf("store: usage: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: usage: commit: %w", err)
	}
	return nil
}

// usageColumns is the number of values per usage_daily row.
const usageColumns = 14

// usageUpsert is the statement adding n rows to the counters. The rows
// are distinct (PostgreSQL refuses an upsert that touches a row twice in
// one statement) and in key order (rows are locked in VALUES order).
func usageUpsert(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO usage_daily
(day, client_id, client, model, provider, key_name, currency, requests, input_tokens, cached_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost_nanos)
VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j := range usageColumns {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(i*usageColumns + j + 1))
		}
		b.WriteByte(')')
	}
	b.WriteString(`
ON CONFLICT (day, client_id, client, model, provider, key_name, currency) DO UPDATE SET
requests = usage_daily.requests + excluded.requests,
input_tokens = usage_daily.input_tokens + excluded.input_tokens,
cached_tokens = usage_daily.cached_tokens + excluded.cached_tokens,
cache_write_tokens = usage_daily.cache_write_tokens + excluded.cache_write_tokens,
output_tokens = usage_daily.output_tokens + excluded.output_tokens,
reasoning_tokens = usage_daily.reasoning_tokens + excluded.reasoning_tokens,
cost_nanos = usage_daily.cost_nanos + excluded.cost_nanos`)
	return b.String()
}

// Usage returns the rows of every UTC day that overlaps [from, to), in
// order of day, client, client id, model, provider, key and currency: (now-7d, now)
// is the last eight days, today included; (first of the month, first of
// the next) is the month.
func (s *Store) Usage(ctx context.Context, from, to time.Time) ([]UsageRow, error) {
	if !from.Before(to) {
		return nil, nil
	}
	first := from.UTC().Format(dayLayout)
	last := to.Add(-time.Nanosecond).UTC().Format(dayLayout)
	rows, err := s.r.QueryContext(ctx, `SELECT day, client_id, client, model, provider, key_name, currency,
requests, input_tokens, cached_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost_nanos
FROM usage_daily WHERE day >= $1 AND day <= $2
ORDER BY day, client, client_id, model, provider, key_name, currency`, first, last)
	if err != nil {
		return nil, fmt.Errorf("store: usage: %w", err)
	}
	defer rows.Close()
	var out []UsageRow
	for rows.Next() {
		var r UsageRow
		var day string
		if err := rows.Scan(&day, &r.ClientID, &r.Client, &r.Model, &r.Provider, &r.Key, &r.Currency,
			&r.Requests, &r.Input, &r.Cached, &r.CacheWrite, &r.Output, &r.Reasoning, &r.CostNanos); err != nil {
			return nil, fmt.Errorf("store: usage: %w", err)
		}
		if r.Day, err = time.Parse(dayLayout, day); err != nil {
			return nil, fmt.Errorf("store: usage: a stored day does not parse: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: usage: %w", err)
	}
	return out, nil
}

// Spent sums a client key's cost in nanos of a currency over the UTC days
// from since's day on (budgets restored at start: since is the period's
// first midnight): the rows of its id, and the rows written before ids
// were kept (schema v3) under its name.
func (s *Store) Spent(ctx context.Context, clientID, client, currency string, since time.Time) (int64, error) {
	var sum int64
	err := s.r.QueryRowContext(ctx, `SELECT COALESCE(SUM(cost_nanos), 0) FROM usage_daily
WHERE (client_id = $1 OR (client_id = '' AND client = $2)) AND currency = $3 AND day >= $4`,
		clientID, client, currency, since.UTC().Format(dayLayout)).Scan(&sum)
	if err != nil {
		return 0, fmt.Errorf("store: spent: %w", err)
	}
	return sum, nil
}

// compare orders keys as Usage returns rows.
func (k usageKey) compare(o usageKey) int {
	if c := cmp.Compare(k.day, o.day); c != 0 {
		return c
	}
	for _, p := range [...][2]string{{k.client, o.client}, {k.clientID, o.clientID}, {k.model, o.model},
		{k.provider, o.provider}, {k.key, o.key}, {k.currency, o.currency}} {
		if c := strings.Compare(p[0], p[1]); c != 0 {
			return c
		}
	}
	return 0
}
