package translate

import (
	"container/list"
	"context"
	"encoding/json"
	"sync"
	"time"
)

// Store keeps translated answers in memory for a limited time, so that a
// client may continue a conversation with previous_response_id and read an
// answer back (GET /v1/responses/{id}). It is the operator's opt-in
// (responses.store: memory): it holds prompt and answer text, so it is never
// written to disk and forgets each entry ttl after it was stored. Each entry
// belongs to the caller whose request stored it (its owner, WithOwner): only
// that caller may read it, delete it or continue it; to anyone else it is
// not there. It is safe for concurrent use.
type Store struct {
	ttl time.Duration
	max int
	now func() time.Time // time.Now; tests move it

	mu      sync.Mutex
	entries map[string]*list.Element
	order   list.List // oldest first; with one ttl that is also expiry order
}

type storeEntry struct {
	id       string
	owner    string
	expires  time.Time
	response []byte
	// items is the conversation up to and with this answer, as Responses
	// items. Entries of one conversation share the items' bytes.
	items []json.RawMessage
}

// Default limits of NewStore.
const (
	DefaultStoreTTL     = time.Hour
	DefaultStoreEntries = 10000
)

// NewStore returns an empty store whose entries expire ttl after they were
// stored (ttl <= 0: DefaultStoreTTL, one hour) and which keeps at most
// maxEntries of them, forgetting the oldest first (maxEntries <= 0:
// DefaultStoreEntries).
func NewStore(ttl time.Duration, maxEntries int) *Store {
	if ttl <= 0 {
		ttl = DefaultStoreTTL
	}
	if maxEntries <= 0 {
		maxEntries = DefaultStoreEntries
	}
	return &Store{ttl: ttl, max: maxEntries, now: time.Now, entries: make(map[string]*list.Element)}
}

type ownerKey struct{}

// WithOwner returns a context whose Responses requests store their answers
// as owner's, and may continue (previous_response_id) only answers owner
// stored: the caller, as the gateway knows it (a client key's id). "" is an
// owner too: every caller that has none (anonymous) is the same one.
func WithOwner(ctx context.Context, owner string) context.Context {
	return context.WithValue(ctx, ownerKey{}, owner)
}

func ownerFrom(ctx context.Context) string {
	owner, _ := ctx.Value(ownerKey{}).(string)
	return owner
}

// Get returns the stored Response object (JSON) with this id, if it is
// still kept and owner stored it. The bytes must not be modified.
func (s *Store) Get(id, owner string) ([]byte, bool) {
	e, ok := s.get(id, owner)
	if !ok {
		return nil, false
	}
	return e.response, true
}

// Delete forgets a response (DELETE /v1/responses/{id}) and reports
// whether it was kept for owner; another owner's is left alone.
func (s *Store) Delete(id, owner string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(s.now())
	el, ok := s.entries[id]
	if ok && el.Value.(*storeEntry).owner == owner {
		s.order.Remove(el)
		delete(s.entries, id)
		return true
	}
	return false
}

// Len returns how many responses are kept now.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(s.now())
	return len(s.entries)
}

func (s *Store) items(id, owner string) ([]json.RawMessage, bool) {
	e, ok := s.get(id, owner)
	if !ok {
		return nil, false
	}
	return e.items, true
}

func (s *Store) get(id, owner string) (*storeEntry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(s.now())
	el, ok := s.entries[id]
	if !ok {
		return nil, false
	}
	e := el.Value.(*storeEntry)
	if e.owner != owner {
		return nil, false // as if unknown: whether it exists is not told
	}
	return e, true
}

func (s *Store) put(id, owner string, response []byte, items []json.RawMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.expire(now)
	if el, ok := s.entries[id]; ok {
		s.order.Remove(el)
	}
	for s.order.Len() >= s.max {
		oldest := s.order.Front()
		s.order.Remove(oldest)
		delete(s.entries, oldest.Value.(*storeEntry).id)
	}
	s.entries[id] = s.order.PushBack(&storeEntry{id: id, owner: owner, expires: now.Add(s.ttl), response: response, items: items})
}

// expire drops the entries whose time is up, oldest first.
func (s *Store) expire(now time.Time) {
	for el := s.order.Front(); el != nil; el = s.order.Front() {
		e := el.Value.(*storeEntry)
		if now.Before(e.expires) {
			return
		}
		s.order.Remove(el)
		delete(s.entries, e.id)
	}
}
