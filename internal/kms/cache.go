package kms

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/sync/singleflight"
)

// Cache keeps unwrapped content-encryption keys in memory, so that a GitOps
// tool re-applying the same Secret every few minutes costs no key-service
// call per value per sync. Entries are bounded in number and age. Identical
// unwraps in flight at once share one key-service call.
//
// A cache hit skips only the key service: the keyring checks the key's
// namespace policy, and admission the value's scope, before the cache is
// asked.
type Cache struct {
	lru    *expirable.LRU[[sha256.Size]byte, []byte]
	flight singleflight.Group

	hits, misses, evictions atomic.Uint64
}

// CacheStats are a Cache's counters since it was made.
type CacheStats struct {
	Hits, Misses, Evictions uint64
	Entries                 int
}

// NewCache returns a cache of at most size content keys, each kept for at
// most ttl.
func NewCache(size int, ttl time.Duration) *Cache {
	c := &Cache{}
	c.lru = expirable.NewLRU(size, func(_ [sha256.Size]byte, cek []byte) {
		c.evictions.Add(1)
		clear(cek)
	}, ttl)
	return c
}

// Stats returns the counters.
func (c *Cache) Stats() CacheStats {
	return CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Evictions: c.evictions.Load(), Entries: c.lru.Len()}
}

// Decrypter returns d with this cache in front of it. The result is a
// KeyIDMatcher when d is one.
func (c *Cache) Decrypter(d Decrypter) Decrypter {
	cd := &cachedDecrypter{Decrypter: d, cache: c}
	if m, ok := d.(KeyIDMatcher); ok {
		return &cachedMatcher{cachedDecrypter: cd, m: m}
	}
	return cd
}

type cachedDecrypter struct {
	Decrypter
	cache *Cache
}

type cachedMatcher struct {
	*cachedDecrypter
	m KeyIDMatcher
}

func (c *cachedMatcher) MatchKeyID(kid string) bool { return c.m.MatchKeyID(kid) }

var (
	_ Decrypter    = (*cachedDecrypter)(nil)
	_ KeyIDMatcher = (*cachedMatcher)(nil)
)

func (d *cachedDecrypter) Unwrap(ctx context.Context, k WrappedKey) ([]byte, error) {
	c := d.cache
	key, ok := cacheKey(d.KeyID(), k)
	if !ok {
		return d.Decrypter.Unwrap(ctx, k)
	}
	if cek, ok := c.lru.Get(key); ok {
		c.hits.Add(1)
		return clone(cek), nil
	}
	ch := c.flight.DoChan(string(key[:]), func() (any, error) {
		// A flight that just ended may have filled the entry between the
		// Get above and this flight.
		if cek, ok := c.lru.Get(key); ok {
			c.hits.Add(1)
			return cek, nil
		}
		c.misses.Add(1)
		cek, err := d.Decrypter.Unwrap(ctx, k)
		if err != nil {
			return nil, err
		}
		c.lru.Add(key, clone(cek))
		return cek, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		// Every caller gets its own copy: callers may clear theirs.
		return clone(res.Val.([]byte)), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// cacheKey hashes everything that goes into unwrapping: the key, and the
// recipient's kid, algorithm, encrypted key and header parameters (for
// ECDH-ES the ephemeral key).
func cacheKey(decrypter string, k WrappedKey) (key [sha256.Size]byte, ok bool) {
	// Of the header, only the ECDH-ES inputs change what a key unwraps to.
	var header []byte
	for _, name := range []jose.HeaderKey{"epk", "apu", "apv"} {
		v, present := k.Header.ExtraHeaders[name]
		if !present {
			continue
		}
		b, err := json.Marshal(v) // maps marshal with sorted keys
		if err != nil {
			return key, false
		}
		header = append(append(append(header, name...), 0), b...)
	}
	h := sha256.New()
	for _, s := range [][]byte{[]byte(decrypter), []byte(k.KeyID), []byte(k.Algorithm), k.EncryptedKey, header} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write(s)
	}
	h.Sum(key[:0])
	return key, true
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
