package kms

import (
	"context"
	"time"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
)

// Options are what a Keyring puts around every key it holds. This file is the
// one place the chain is assembled; from the keyring inwards each unwrap
// passes through:
//
//  1. the Timeout, set by Keyring.Unwrap;
//  2. Observer.Unwrapped, once per unwrap, cache hits included;
//  3. the Cache, which answers repeated unwraps and merges identical ones in
//     flight;
//  4. the NegativeCache, which answers for a key ID the key service said
//     lately it does not have;
//  5. the CallLimit, which refuses a call past the process's limit of calls
//     in flight with ErrOverloaded;
//  6. Observer.KeyServiceCalled, once per call that reached the key service;
//  7. the key's Decrypter, the key service.
//
// Each decorator is a step around the Decrypter it wraps (decorate), so KeyID
// and MatchKeyID reach the key service unchanged.
type Options struct {
	// Timeout bounds each call to a key service, under whatever deadline the
	// caller's context already has. Zero means only the caller's.
	Timeout time.Duration
	// Cache, when not nil, keeps unwrapped content keys.
	Cache *Cache
	// Negative, when not nil, remembers key IDs the key service does not have.
	Negative *NegativeCache
	// Limit, when not nil, bounds the key-service calls in flight; share one
	// among every keyring of the process.
	Limit *CallLimit
	// Observer, when not nil, is told of every unwrap and key-service call;
	// internal/metrics records them.
	Observer Observer
}

// Observer records what the keyring's chain sees. Its methods must be safe
// for concurrent use and quick: they run on every unwrap.
type Observer interface {
	// Unwrapped is called after each unwrap by the key configured as kid,
	// cache hits included, with its error (nil on success).
	Unwrapped(kid, provider string, err error)
	// KeyServiceCalled is called after each call that reached the key
	// service of provider, failures included, with how long it took.
	KeyServiceCalled(provider string, took time.Duration)
}

// chain returns d with the decorators of o around it; see Options.
func (o Options) chain(provider string, d Decrypter) Decrypter {
	if o.Observer != nil {
		d = decorate(d, timed(provider, o.Observer))
	}
	if o.Limit != nil {
		d = o.Limit.decrypter(d)
	}
	if o.Negative != nil {
		d = o.Negative.decrypter(d)
	}
	if o.Cache != nil {
		d = o.Cache.Decrypter(d)
	}
	if o.Observer != nil {
		d = decorate(d, counted(provider, o.Observer))
	}
	return d
}

// step is one decorator of the chain: it unwraps r, asking next for what it
// does not answer itself.
type step func(ctx context.Context, r jwe.Recipient, next Decrypter) ([]byte, error)

// decorated is a Decrypter whose Unwrap goes through a step. It embeds the
// Decrypter it wraps, so KeyID and MatchKeyID are that one's.
type decorated struct {
	Decrypter
	step step
}

var _ Decrypter = (*decorated)(nil)

// decorate returns d with its Unwrap passed through s.
func decorate(d Decrypter, s step) Decrypter { return &decorated{Decrypter: d, step: s} }

func (d *decorated) Unwrap(ctx context.Context, r jwe.Recipient) ([]byte, error) {
	return d.step(ctx, r, d.Decrypter)
}

// timed reports the duration of each key-service call.
func timed(provider string, obs Observer) step {
	return func(ctx context.Context, r jwe.Recipient, next Decrypter) ([]byte, error) {
		start := time.Now()
		cek, err := next.Unwrap(ctx, r)
		obs.KeyServiceCalled(provider, time.Since(start))
		return cek, err
	}
}

// counted reports each unwrap and its outcome.
func counted(provider string, obs Observer) step {
	return func(ctx context.Context, r jwe.Recipient, next Decrypter) ([]byte, error) {
		cek, err := next.Unwrap(ctx, r)
		obs.Unwrapped(next.KeyID(), provider, err)
		return cek, err
	}
}
