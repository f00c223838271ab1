package kms

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
)

// gate is a decrypter whose calls block until released, counting them. A
// call never released fails after gateTimeout, so that a regression fails
// the test instead of hanging it.
type gate struct {
	fakeDecrypter
	release chan struct{}
	entered chan struct{}
}

const gateTimeout = time.Minute

var errGateStuck = errors.New("gate: call never released")

func (g *gate) Unwrap(ctx context.Context, k jwe.Recipient) ([]byte, error) {
	g.entered <- struct{}{}
	select {
	case <-g.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(gateTimeout):
		return nil, errGateStuck
	}
	return g.fakeDecrypter.Unwrap(ctx, k)
}

// waitEntered waits for a call to reach g, failing t after gateTimeout.
func (g *gate) waitEntered(t *testing.T) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(gateTimeout):
		t.Fatal("no call reached the key service")
	}
}

func wrapped(kid string, ek string) jwe.Recipient {
	return jwe.Recipient{KeyID: kid, Algorithm: "RSA-OAEP-256", EncryptedKey: []byte(ek)}
}

func TestCacheHitsAndMisses(t *testing.T) {
	f := newFake("k1")
	c := NewCache(10, time.Hour, time.Minute)
	d := c.Decrypter(f)
	ctx := context.Background()
	for range 3 {
		cek, err := d.Unwrap(ctx, wrapped("k1", "ek-a"))
		if err != nil || string(cek) != "cek of k1" {
			t.Fatalf("%q %v", cek, err)
		}
		clear(cek) // a caller clearing its copy must not touch the cache
	}
	if _, err := d.Unwrap(ctx, wrapped("k1", "ek-b")); err != nil {
		t.Fatal(err)
	}
	if got := f.calls.Load(); got != 2 {
		t.Fatalf("key service called %d times, want 2", got)
	}
	if s := c.Stats(); s.Hits != 2 || s.Misses != 2 || s.Entries != 2 {
		t.Fatalf("stats %+v", s)
	}
	cek, _ := d.Unwrap(ctx, wrapped("k1", "ek-a"))
	if string(cek) != "cek of k1" {
		t.Fatalf("cached key was changed by a caller: %q", cek)
	}
}

func TestCacheKeyCoversHeader(t *testing.T) {
	f := newFake("k1")
	d := NewCache(10, time.Hour, time.Minute).Decrypter(f)
	a := wrapped("k1", "ek")
	b := wrapped("k1", "ek")
	b.EphemeralKey = []byte(`{"x":"1"}`)
	c := wrapped("k1", "ek")
	c.Algorithm = "RSA-OAEP"
	for _, k := range []jwe.Recipient{a, b, c} {
		if _, err := d.Unwrap(context.Background(), k); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.calls.Load(); got != 3 {
		t.Fatalf("%d calls: different headers or algorithms must not share an entry", got)
	}
}

func TestCacheErrorsAreNotCached(t *testing.T) {
	f := newFake("k1")
	f.err = errors.New("unavailable")
	d := NewCache(10, time.Hour, time.Minute).Decrypter(f)
	for range 2 {
		if _, err := d.Unwrap(context.Background(), wrapped("k1", "ek")); err == nil {
			t.Fatal("no error")
		}
	}
	if f.calls.Load() != 2 {
		t.Fatalf("%d calls", f.calls.Load())
	}
}

func TestCacheSingleflight(t *testing.T) {
	g := &gate{fakeDecrypter: *newFake("k1"), release: make(chan struct{}), entered: make(chan struct{}, 100)}
	c := NewCache(10, time.Hour, time.Minute)
	d := c.Decrypter(g)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := d.Unwrap(context.Background(), wrapped("k1", "same"))
			errs <- err
		})
	}
	g.waitEntered(t) // the first call reached the key service; the rest join it or hit
	close(g.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if calls := g.calls.Load(); calls != 1 {
		t.Fatalf("%d identical concurrent unwraps made %d key-service calls, want 1", n, calls)
	}
}

func TestCacheEviction(t *testing.T) {
	f := newFake("k1")
	c := NewCache(2, time.Hour, time.Minute)
	d := c.Decrypter(f)
	for _, ek := range []string{"a", "b", "c"} {
		if _, err := d.Unwrap(context.Background(), wrapped("k1", ek)); err != nil {
			t.Fatal(err)
		}
	}
	if s := c.Stats(); s.Entries != 2 || s.Evictions != 1 {
		t.Fatalf("by size: %+v", s)
	}
	_, _ = d.Unwrap(context.Background(), wrapped("k1", "a")) // evicted: a miss
	if f.calls.Load() != 4 {
		t.Fatalf("%d calls", f.calls.Load())
	}

	aged := NewCache(10, 20*time.Millisecond, time.Minute)
	ad := aged.Decrypter(f)
	_, _ = ad.Unwrap(context.Background(), wrapped("k1", "x"))
	deadline := time.Now().Add(5 * time.Second)
	for aged.Stats().Entries != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("entry not expired: %+v", aged.Stats())
		}
		time.Sleep(5 * time.Millisecond) // polling for the expiry, not waiting a fixed time
	}
	if s := aged.Stats(); s.Evictions != 1 {
		t.Fatalf("by age: %+v", s)
	}
}

func TestCachePolicyStillEnforced(t *testing.T) {
	f := newFake("k1")
	c := NewCache(10, time.Hour, time.Minute)
	r := mustKeyring(t, Entry{Decrypter: c.Decrypter(f), Provider: "local", Namespaces: []string{"team-*"}})
	if _, err := r.Unwrap(context.Background(), "team-a", wrapped("k1", "ek")); err != nil {
		t.Fatal(err)
	}
	_, err := r.Unwrap(context.Background(), "prod", wrapped("k1", "ek"))
	if !errors.Is(err, ErrNamespaceNotAllowed) {
		t.Fatalf("cache hit bypassed the namespace policy: %v", err)
	}
	if s := c.Stats(); s.Hits != 0 {
		t.Fatalf("the cache was asked before the policy: %+v", s)
	}
}

type v2matcher struct{ *fakeDecrypter }

func (m v2matcher) MatchKeyID(kid string) bool { return kid == "k1/v2" }

func TestCacheKeepsMatcher(t *testing.T) {
	m := NewCache(10, time.Hour, time.Minute).Decrypter(v2matcher{newFake("k1")})
	if !m.MatchKeyID("k1/v2") || m.MatchKeyID("k2") {
		t.Fatal("a cached matcher must still match")
	}
	if NewCache(1, time.Hour, time.Minute).Decrypter(newFake("k")).MatchKeyID("k1/v2") {
		t.Fatal("a cached plain decrypter must not claim to match")
	}
}

func TestKeyringTimeout(t *testing.T) {
	g := &gate{fakeDecrypter: *newFake("k1"), release: make(chan struct{}), entered: make(chan struct{}, 1)}
	r, err := NewKeyring(Options{Timeout: 20 * time.Millisecond}, Entry{Decrypter: g, Provider: "gcpkms"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Unwrap(context.Background(), "ns", wrapped("k1", "ek"))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "key service gcpkms did not answer in time") {
		t.Fatalf("got %v", err)
	}
}

func TestCacheForget(t *testing.T) {
	c := NewCache(10, time.Hour, time.Minute)
	k1, k2 := newFake("k1"), newFake("k2")
	d1, d2 := c.Decrypter(k1), c.Decrypter(k2)
	unwrap := func(d Decrypter, ek string) {
		t.Helper()
		if _, err := d.Unwrap(context.Background(), wrapped(d.KeyID(), ek)); err != nil {
			t.Fatal(err)
		}
	}
	unwrap(d1, "a")
	unwrap(d1, "b")
	unwrap(d2, "a")
	c.Forget("k1")
	if s := c.Stats(); s.Entries != 1 {
		t.Fatalf("after Forget(k1): %+v, want k2's one entry", s)
	}
	unwrap(d1, "a")
	unwrap(d2, "a")
	if n1, n2 := k1.calls.Load(), k2.calls.Load(); n1 != 3 || n2 != 1 {
		t.Fatalf("key-service calls k1 %d, k2 %d; want 3 (forgotten) and 1 (kept)", n1, n2)
	}

	// An unwrap in flight while its key is forgotten answers its caller but
	// caches nothing.
	g := newGate("k3")
	d3 := c.Decrypter(g)
	done := make(chan error, 1)
	go func() {
		_, err := d3.Unwrap(context.Background(), wrapped("k3", "a"))
		done <- err
	}()
	g.waitEntered(t)
	c.Forget("k3")
	close(g.release)
	if err := waitFor(t, done, "the unwrap in flight"); err != nil {
		t.Fatal(err)
	}
	if _, err := d3.Unwrap(context.Background(), wrapped("k3", "a")); err != nil {
		t.Fatal(err)
	}
	if n := g.calls.Load(); n != 2 {
		t.Fatalf("%d calls: an unwrap in flight during Forget cached its key", n)
	}
}
