package kms

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/sync/singleflight"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
)

// Cache keeps unwrapped content-encryption keys in memory, so that a GitOps
// tool re-applying the same Secret every few minutes costs no key-service
// call per value per sync. Entries are bounded in number and age. Identical
// unwraps in flight at once share one key-service call.
//
// A cache hit skips only the key service: the keyring checks the key's
// namespace policy, and admission the value's scope, before the cache is
// asked.
//
// An entry's key is zeroed when the entry leaves the cache; every reader
// copies it out under the entry's lock, so no caller ever holds the cache's
// own slice.
type Cache struct {
	lru         *expirable.LRU[[sha256.Size]byte, *cacheEntry]
	flight      singleflight.Group
	callTimeout time.Duration

	mu   sync.Mutex        // orders adding an entry against Forget
	gens map[string]uint64 // by configured key ID, bumped by Forget

	hits, misses, evictions atomic.Uint64
}

// cacheEntry is one cached content key. Its lock orders the copy a reader
// takes against the zeroing on eviction; it is never held while the LRU's
// own lock is taken, so the two cannot deadlock.
type cacheEntry struct {
	kid string // of the configured key that unwrapped cek
	mu  sync.Mutex
	cek []byte // nil once evicted
}

// get returns a copy of the content key, or false once the entry was evicted.
func (e *cacheEntry) get() ([]byte, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cek == nil {
		return nil, false
	}
	return clone(e.cek), true
}

// evict zeroes the content key.
func (e *cacheEntry) evict() {
	e.mu.Lock()
	defer e.mu.Unlock()
	clear(e.cek)
	e.cek = nil
}

// CacheStats are a Cache's counters since it was made.
type CacheStats struct {
	Hits, Misses, Evictions uint64
	Entries                 int
}

// NewCache returns a cache of at most size content keys, each kept for at
// most ttl. A key-service call the cache makes on a miss is shared by every
// caller that asks for the same key meanwhile, so it does not run under any
// one caller's context: it runs under a deadline of its own, callTimeout
// (the caller's deadline when callTimeout is not positive), and is not
// cancelled when a caller goes away.
func NewCache(size int, ttl, callTimeout time.Duration) *Cache {
	c := &Cache{callTimeout: callTimeout, gens: map[string]uint64{}}
	c.lru = expirable.NewLRU(size, func(_ [sha256.Size]byte, e *cacheEntry) {
		c.evictions.Add(1)
		e.evict()
	}, ttl)
	return c
}

// Stats returns the counters.
func (c *Cache) Stats() CacheStats {
	return CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Evictions: c.evictions.Load(), Entries: c.lru.Len()}
}

// Forget drops at once every content key that the key configured as kid
// unwrapped, and keeps unwraps by it in flight now from adding theirs: the
// key was removed from the configuration, so nothing it opened may be served
// from memory any more.
func (c *Cache) Forget(kid string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gens[kid]++
	for _, key := range c.lru.Keys() {
		if e, ok := c.lru.Peek(key); ok && e.kid == kid {
			c.lru.Remove(key)
		}
	}
}

// generation is kid's count of Forget calls.
func (c *Cache) generation(kid string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gens[kid]
}

// add caches cek under key unless Forget(kid) was called since gen.
func (c *Cache) add(key [sha256.Size]byte, kid string, gen uint64, cek []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gens[kid] == gen {
		c.lru.Add(key, &cacheEntry{kid: kid, cek: clone(cek)})
	}
}

// Decrypter returns d with this cache in front of it.
func (c *Cache) Decrypter(d Decrypter) Decrypter {
	return decorate(d, c.unwrap)
}

func (c *Cache) unwrap(ctx context.Context, k jwe.Recipient, next Decrypter) ([]byte, error) {
	key := cacheKey(next.KeyID(), k)
	if cek, ok := c.get(key); ok {
		c.hits.Add(1)
		return cek, nil
	}
	ch := c.flight.DoChan(string(key[:]), func() (any, error) {
		// A flight that just ended may have filled the entry between the
		// lookup above and this flight.
		if cek, ok := c.get(key); ok {
			c.hits.Add(1)
			return cek, nil
		}
		c.misses.Add(1)
		kid := next.KeyID()
		gen := c.generation(kid)
		fctx, cancel := c.flightContext(ctx)
		defer cancel()
		cek, err := next.Unwrap(fctx, k)
		if err != nil {
			return nil, err
		}
		c.add(key, kid, gen, cek)
		return cek, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		// The flight's slice is its own, never the cache's; every caller
		// gets a copy of it, since callers may clear theirs.
		return clone(res.Val.([]byte)), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// get returns a copy of the content key cached under key.
func (c *Cache) get(key [sha256.Size]byte) ([]byte, bool) {
	e, ok := c.lru.Get(key)
	if !ok {
		return nil, false
	}
	return e.get()
}

// flightContext is the context of a key-service call shared by every caller
// that joins it: ctx's values without its cancellation, under the cache's
// own deadline.
func (c *Cache) flightContext(ctx context.Context) (context.Context, context.CancelFunc) {
	fctx := context.WithoutCancel(ctx)
	if c.callTimeout > 0 {
		return context.WithTimeout(fctx, c.callTimeout)
	}
	if dl, ok := ctx.Deadline(); ok {
		return context.WithDeadline(fctx, dl)
	}
	return context.WithCancel(fctx)
}

// cacheKey hashes everything that goes into unwrapping: the key, and the
// recipient's kid, algorithm, encrypted key and ECDH-ES inputs (ephemeral key
// and party information, as written).
func cacheKey(decrypter string, k jwe.Recipient) (key [sha256.Size]byte) {
	h := sha256.New()
	for _, s := range [][]byte{[]byte(decrypter), []byte(k.KeyID), []byte(k.Algorithm), k.EncryptedKey, k.EphemeralKey, k.PartyUInfo, k.PartyVInfo} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write(s)
	}
	h.Sum(key[:0])
	return key
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
