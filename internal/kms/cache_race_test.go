package kms

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newGate(kid string) *gate {
	return &gate{fakeDecrypter: *newFake(kid), release: make(chan struct{}), entered: make(chan struct{}, 100)}
}

// waitFor receives from ch, failing the test after gateTimeout.
func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(gateTimeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// TestCacheEvictionNeverZeroesAKeyInUse reads keys while the cache evicts
// them: two keys take turns in a cache of one, so nearly every miss evicts
// the entry other readers are copying, until the cache has evicted enough
// entries. An evicted entry is zeroed; no reader may ever see that. Under
// -race, the race detector also reports a reader copying a slice that
// eviction clears. Eviction by age goes through the same callback; it is
// rare under constant reads, since an expired entry is replaced on the next
// miss before the expiry sweep reaches it.
func TestCacheEvictionNeverZeroesAKeyInUse(t *testing.T) {
	// Readers stop at wantEvictions or after maxRun, whichever comes first;
	// fewer than minEvictions would prove nothing.
	const wantEvictions, minEvictions, maxRun = 20000, 100, 10 * time.Second
	f := newFake("k1")
	c := NewCache(1, time.Hour, time.Minute)
	d := c.Decrypter(f)
	var stop atomic.Bool
	var lookups, wrong atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; !stop.Load(); i++ {
				cek, err := d.Unwrap(context.Background(), wrapped("k1", strconv.Itoa(i%2)))
				lookups.Add(1)
				if err != nil || string(cek) != "cek of k1" {
					wrong.Add(1)
				}
			}
		})
	}
	deadline := time.Now().Add(maxRun)
	for c.Stats().Evictions < wantEvictions && time.Now().Before(deadline) {
		runtime.Gosched() // polling the counter, not waiting a fixed time
	}
	stop.Store(true)
	wg.Wait()
	if n := wrong.Load(); n > 0 {
		t.Fatalf("%d of %d lookups returned a wrong or zeroed key", n, lookups.Load())
	}
	if s := c.Stats(); s.Evictions < minEvictions || s.Hits == 0 {
		t.Fatalf("too few evictions or no hit, so too little raced: %+v", s)
	}
}

// doneWatch is a context that reports when its Done channel is first asked
// for: the cache asks for it only once the caller waits for a flight.
type doneWatch struct {
	context.Context
	once  sync.Once
	asked chan struct{}
}

func (c *doneWatch) Done() <-chan struct{} {
	c.once.Do(func() { close(c.asked) })
	return c.Context.Done()
}

// TestCacheSharedCallSurvivesFirstCallerCancel: the first caller starts the
// key-service call, a second joins it, then the first caller's request is
// cancelled. The second caller must still get the key, from that one call.
func TestCacheSharedCallSurvivesFirstCallerCancel(t *testing.T) {
	g := newGate("k1")
	d := NewCache(10, time.Hour, time.Minute).Decrypter(g)
	k := wrapped("k1", "ek")

	ctxA, cancelA := context.WithCancel(context.Background())
	defer cancelA()
	errA := make(chan error, 1)
	go func() {
		_, err := d.Unwrap(ctxA, k)
		errA <- err
	}()
	g.waitEntered(t)

	type result struct {
		cek []byte
		err error
	}
	ctxB := &doneWatch{Context: context.Background(), asked: make(chan struct{})}
	resB := make(chan result, 1)
	go func() {
		cek, err := d.Unwrap(ctxB, k)
		resB <- result{cek, err}
	}()
	waitFor(t, ctxB.asked, "the second caller to wait for the shared call")

	cancelA()
	if err := waitFor(t, errA, "the cancelled caller"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: got %v, want context.Canceled", err)
	}
	close(g.release)
	r := waitFor(t, resB, "the second caller")
	if r.err != nil || string(r.cek) != "cek of k1" {
		t.Fatalf("second caller: %q, %v; the first caller's cancel must not end the shared call", r.cek, r.err)
	}
	if n := g.calls.Load(); n != 1 {
		t.Fatalf("%d key-service calls, want 1 shared", n)
	}
}

// TestCacheSharedCallHasItsOwnDeadline: a caller without a deadline still
// gets an answer when the key service never does.
func TestCacheSharedCallHasItsOwnDeadline(t *testing.T) {
	g := newGate("k1")
	d := NewCache(10, time.Hour, 20*time.Millisecond).Decrypter(g)
	_, err := d.Unwrap(context.Background(), wrapped("k1", "ek"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the call's own deadline to end it", err)
	}
}
