package kms

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
)

// kmsVersions is a key service that has key kmsVersions "k1/1" and "k1/2" only.
type kmsVersions struct {
	calls atomic.Int32
}

func (v *kmsVersions) KeyID() string              { return "k1" }
func (v *kmsVersions) MatchKeyID(kid string) bool { return len(kid) > 3 && kid[:3] == "k1/" }

func (v *kmsVersions) Unwrap(_ context.Context, k jwe.Recipient) ([]byte, error) {
	v.calls.Add(1)
	switch k.KeyID {
	case "k1/1", "k1/2":
		return []byte("cek"), nil
	case "k1/down":
		return nil, errors.New("unavailable")
	}
	return nil, fmt.Errorf("version %q: %w", k.KeyID, ErrKeyNotFound)
}

func TestNegativeCacheMadeUpKid(t *testing.T) {
	v := &kmsVersions{}
	n := NewNegativeCache(100, time.Hour)
	d := n.decrypter(v)
	const values = 1000
	var wg sync.WaitGroup
	var wrong atomic.Int32
	for i := range values {
		wg.Go(func() {
			_, err := d.Unwrap(context.Background(), wrapped("k1/99", strconv.Itoa(i)))
			if !errors.Is(err, ErrKeyNotFound) || err.Error() != `version "k1/99": the key service has no such key` {
				wrong.Add(1)
			}
		})
	}
	wg.Wait()
	if w := wrong.Load(); w > 0 {
		t.Fatalf("%d of %d values got another answer than the key service's", w, values)
	}
	if c := v.calls.Load(); c != 1 {
		t.Fatalf("%d values with one made-up kid made %d key-service calls, want 1", values, c)
	}
	if h := n.Hits(); h != values-1 {
		t.Fatalf("%d hits, want %d", h, values-1)
	}
	if !d.MatchKeyID("k1/5") {
		t.Fatal("a key behind the negative cache must still match its family")
	}
}

func TestNegativeCacheRemembersOnlyMissingKeys(t *testing.T) {
	tests := []struct {
		kid       string
		wantErr   bool
		wantCalls int32
	}{
		{"k1/1", false, 3},   // found: every value is its own call
		{"k1/down", true, 3}, // unavailable now, maybe not in a second
		{"k1/7", true, 1},    // missing: one call
	}
	for _, tt := range tests {
		t.Run(tt.kid, func(t *testing.T) {
			v := &kmsVersions{}
			d := NewNegativeCache(100, time.Hour).decrypter(v)
			for i := range 3 {
				_, err := d.Unwrap(context.Background(), wrapped(tt.kid, strconv.Itoa(i)))
				if (err != nil) != tt.wantErr {
					t.Fatalf("value %d: %v", i, err)
				}
			}
			if c := v.calls.Load(); c != tt.wantCalls {
				t.Fatalf("%d calls, want %d", c, tt.wantCalls)
			}
		})
	}
}

func TestNegativeCacheExpires(t *testing.T) {
	v := &kmsVersions{}
	n := NewNegativeCache(100, 20*time.Millisecond)
	d := n.decrypter(v)
	ask := func() {
		if _, err := d.Unwrap(context.Background(), wrapped("k1/5", "x")); !errors.Is(err, ErrKeyNotFound) {
			t.Fatal(err)
		}
	}
	ask()
	deadline := time.Now().Add(gateTimeout)
	for v.calls.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the key service was not asked again after the entry expired")
		}
		time.Sleep(5 * time.Millisecond) // polling for the expiry, not waiting a fixed time
		ask()
	}
}

// TestNegativeCacheFollowersOfAFoundKey: values that waited for the first
// call of their key ID make their own call when the key exists.
func TestNegativeCacheFollowersOfAFoundKey(t *testing.T) {
	g := newGate("k1")
	d := NewNegativeCache(100, time.Hour).decrypter(g)
	errA := make(chan error, 1)
	go func() {
		_, err := d.Unwrap(context.Background(), wrapped("k1", "a"))
		errA <- err
	}()
	g.waitEntered(t)
	ctxB := &doneWatch{Context: context.Background(), asked: make(chan struct{})}
	errB := make(chan error, 1)
	go func() {
		_, err := d.Unwrap(ctxB, wrapped("k1", "b"))
		errB <- err
	}()
	waitFor(t, ctxB.asked, "the second value to wait for the first call")
	close(g.release)
	if err := waitFor(t, errA, "the first value"); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(t, errB, "the second value"); err != nil {
		t.Fatal(err)
	}
	if n := g.calls.Load(); n != 2 {
		t.Fatalf("%d calls, want one per value", n)
	}
}

// TestKeyringChainNegativeAndLimit: through the keyring's whole chain, a
// Secret of values repeating a made-up version costs one key-service call,
// and a call past the limit is refused as ErrOverloaded.
func TestKeyringChainNegativeAndLimit(t *testing.T) {
	v := &kmsVersions{}
	r, err := NewKeyring(Options{
		Timeout:  time.Minute,
		Cache:    NewCache(100, time.Hour, time.Minute),
		Negative: NewNegativeCache(100, time.Hour),
		Limit:    NewCallLimit(4),
	}, Entry{Decrypter: v, Provider: "gcpkms"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			_, err := r.Unwrap(context.Background(), "ns", wrapped("k1/42", strconv.Itoa(i)))
			if !errors.Is(err, ErrKeyNotFound) {
				t.Errorf("value %d: %v, want ErrKeyNotFound", i, err)
			}
		})
	}
	wg.Wait()
	if c := v.calls.Load(); c != 1 {
		t.Fatalf("%d key-service calls for one made-up version, want 1", c)
	}

	g := newGate("g")
	l := NewCallLimit(1)
	r, err = NewKeyring(Options{Limit: l}, Entry{Decrypter: g, Provider: "vault"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.Unwrap(context.Background(), "ns", wrapped("g", "a"))
		done <- err
	}()
	g.waitEntered(t)
	_, err = r.Unwrap(context.Background(), "ns", wrapped("g", "b"))
	if !errors.Is(err, ErrOverloaded) || !strings.Contains(err.Error(), `key "g"`) {
		t.Fatalf("past the limit: %v, want ErrOverloaded naming the key", err)
	}
	close(g.release)
	if err := waitFor(t, done, "the call within the limit"); err != nil {
		t.Fatal(err)
	}
}
