package kms

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestCallLimit(t *testing.T) {
	g := newGate("k1")
	l := NewCallLimit(2)
	d := l.decrypter(g)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			if _, err := d.Unwrap(context.Background(), wrapped("k1", fmt.Sprint(i))); err != nil {
				t.Errorf("call within the limit: %v", err)
			}
		})
	}
	g.waitEntered(t)
	g.waitEntered(t)
	_, err := d.Unwrap(context.Background(), wrapped("k1", "third"))
	if !errors.Is(err, ErrOverloaded) || err.Error() != "2 calls in flight: too many key-service calls in flight" {
		t.Fatalf("past the limit: %v, want ErrOverloaded", err)
	}
	if n := g.calls.Load(); n != 0 {
		t.Fatalf("%d calls finished before release", n)
	}
	if got := l.InFlight(); got != 2 {
		t.Fatalf("in flight %d, want 2", got)
	}
	close(g.release)
	wg.Wait()
	if got := l.InFlight(); got != 0 {
		t.Fatalf("in flight %d after the calls ended", got)
	}
	if _, err := d.Unwrap(context.Background(), wrapped("k1", "later")); err != nil {
		t.Fatalf("a slot freed: %v", err)
	}
}

// TestCallLimitWithCache: a shared in-flight unwrap takes one slot, and a
// cache hit none.
func TestCallLimitWithCache(t *testing.T) {
	g := newGate("k1")
	l := NewCallLimit(1)
	d := NewCache(10, time.Hour, time.Minute).Decrypter(l.decrypter(g))
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if _, err := d.Unwrap(context.Background(), wrapped("k1", "same")); err != nil {
				t.Errorf("joined a shared call: %v", err)
			}
		})
	}
	g.waitEntered(t)
	close(g.release)
	wg.Wait()
	if _, err := d.Unwrap(context.Background(), wrapped("k1", "same")); err != nil {
		t.Fatalf("cache hit: %v", err)
	}
	if n := g.calls.Load(); n != 1 {
		t.Fatalf("%d key-service calls, want 1", n)
	}
}
