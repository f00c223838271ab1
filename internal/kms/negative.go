package kms

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/sync/singleflight"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
)

// ErrKeyNotFound means the key service has no such key or key version. That
// answer will not change in seconds, so a NegativeCache remembers it.
var ErrKeyNotFound = errors.New("the key service has no such key")

// NegativeCache remembers for a short time the key IDs a key service said it
// does not have, so that a Secret repeating a made-up key ID costs one
// key-service call, not one per value.
//
// Calls for a key ID the service has not answered lately wait for the first
// one: when it says the key does not exist, they fail with its error; else
// each makes its own call, as values with one key ID differ in what the key
// service must unwrap. A key ID the service has answered for, successfully or
// with any other error, is not held up again until ttl passes.
type NegativeCache struct {
	missing *expirable.LRU[string, error]    // key IDs the key service said it does not have
	known   *expirable.LRU[string, struct{}] // key IDs it answered otherwise
	probe   singleflight.Group
	hits    atomic.Uint64
}

// NewNegativeCache returns a cache of at most size key IDs, each kept for
// ttl.
func NewNegativeCache(size int, ttl time.Duration) *NegativeCache {
	return &NegativeCache{
		missing: expirable.NewLRU[string, error](size, nil, ttl),
		known:   expirable.NewLRU[string, struct{}](size, nil, ttl),
	}
}

// Hits is the number of calls answered from the cache.
func (n *NegativeCache) Hits() uint64 { return n.hits.Load() }

// decrypter returns d with this cache in front of it.
func (n *NegativeCache) decrypter(d Decrypter) Decrypter {
	return decorate(d, n.unwrap)
}

func (n *NegativeCache) unwrap(ctx context.Context, k jwe.Recipient, next Decrypter) ([]byte, error) {
	id := next.KeyID() + "\x00" + k.KeyID
	if err, ok := n.missing.Get(id); ok {
		n.hits.Add(1)
		return nil, err
	}
	if n.known.Contains(id) {
		return n.call(ctx, id, k, next)
	}
	led := false
	ch := n.probe.DoChan(id, func() (any, error) {
		led = true
		// A probe that just ended may have found the key ID missing
		// between the lookup above and this probe.
		if err, ok := n.missing.Get(id); ok {
			n.hits.Add(1)
			return nil, err
		}
		return n.call(ctx, id, k, next)
	})
	select {
	case res := <-ch:
		if led {
			cek, _ := res.Val.([]byte)
			return cek, res.Err
		}
		if errors.Is(res.Err, ErrKeyNotFound) {
			n.hits.Add(1)
			return nil, res.Err
		}
		return n.call(ctx, id, k, next)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// call asks the key service and remembers what its answer says of the key ID.
func (n *NegativeCache) call(ctx context.Context, id string, k jwe.Recipient, next Decrypter) ([]byte, error) {
	cek, err := next.Unwrap(ctx, k)
	switch {
	case errors.Is(err, ErrKeyNotFound):
		n.missing.Add(id, err)
	case ctx.Err() == nil && !errors.Is(err, ErrOverloaded):
		n.known.Add(id, struct{}{})
	}
	return cek, err
}
