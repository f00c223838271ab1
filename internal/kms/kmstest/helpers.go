package kmstest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"sync"
	"testing"
	"time"
)

// rsaKeys are RSA-2048 keys generated once per test binary: generating one
// takes a noticeable fraction of a second.
var rsaKeys = sync.OnceValues(func() ([3]*rsa.PrivateKey, error) {
	var keys [3]*rsa.PrivateKey
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return keys, err
		}
		keys[i] = k
	}
	return keys, nil
})

// RSAKey returns one of three RSA-2048 keys, the (i mod 3)th, generated once
// per test binary.
func RSAKey(tb testing.TB, i int) *rsa.PrivateKey {
	tb.Helper()
	keys, err := rsaKeys()
	if err != nil {
		tb.Fatal(err)
	}
	return keys[i%len(keys)]
}

// Hold waits d, or until ctx ends, which it reports. A fake service holds a
// call with it to stand for a slow one.
func Hold(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Serve returns the fake key service start makes, for the test, and closes
// it when the test ends.
func Serve[S interface{ Close() }](tb testing.TB, start func() (S, error)) S {
	tb.Helper()
	s, err := start()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}
