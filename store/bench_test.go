package store

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkChange is one Change holding one PutModel: the cost of a panel
// edit, dominated by the flush at commit (SQLite synchronous=FULL; the
// benchmarks' PostgreSQL runs with fsync and synchronous_commit on, see
// pgDurable) and, on PostgreSQL, by the round trips.
func BenchmarkChange(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s := newStoreOn(b, be)
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				name := fmt.Sprint("m", i%100)
				i++
				if err := s.Change(ctx, "bench", func(tx *Tx) error { return tx.PutModel(model(name)) }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAddUsage writes a batch of 100 rows (what one Recorder flush
// carries on a busy gateway): ns/op is per batch.
func BenchmarkAddUsage(b *testing.B) {
	rows := make([]UsageRow, 100)
	for i := range rows {
		rows[i] = UsageRow{Day: day(2025, 1, 1), Client: fmt.Sprint("client-", i%10), Model: fmt.Sprint("model-", i/10),
			Provider: "p", Key: "k", Currency: "usd", Requests: 1, Input: 1000, Output: 200, CostNanos: 12345}
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s := newStoreOn(b, be)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := s.AddUsage(ctx, rows); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRecord is the cost a request pays: a map update under a lock.
func BenchmarkRecord(b *testing.B) {
	s := newStore(b)
	r := NewRecorder(s, 1<<62, nil)
	defer r.Close()
	row := UsageRow{Day: day(2025, 1, 1), Client: "c", Model: "m", Provider: "p", Key: "k", Currency: "usd", Requests: 1, Input: 10}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Record(row)
		}
	})
}

// BenchmarkEntries reads a panel-sized configuration: 10 providers of 3
// keys (literals, decrypted), 50 models, 100 client keys.
func BenchmarkEntries(b *testing.B) {
	s := newStore(b)
	change(b, s, func(tx *Tx) error {
		for i := range 10 {
			if err := tx.PutProvider(provider(fmt.Sprint("p", i), ProviderKey{Secret: secretA}, ProviderKey{Secret: secretB}, ProviderKey{Env: "E"})); err != nil {
				return err
			}
		}
		for i := range 50 {
			if err := tx.PutModel(model(fmt.Sprint("m", i))); err != nil {
				return err
			}
		}
		for i := range 100 {
			if _, err := tx.CreateClientKey(ClientKey{Name: fmt.Sprint("k", i), Digest: fmt.Sprintf("%064x", i)}); err != nil {
				return err
			}
		}
		return nil
	})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Entries(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
