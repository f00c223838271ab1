package kmstest

import "sync"

// Record is what every fake key service keeps beside its keys: the faults a
// test injected (F, whose zero value is a well-behaved service) and the
// calls it received (C, a struct of counts). A fake holds one in its Server
// and answers SetFaults and Calls from it. Its methods are safe for
// concurrent use.
type Record[F, C any] struct {
	mu     sync.Mutex
	faults F
	calls  C
}

// SetFaults replaces the faults; the zero F heals the service.
func (r *Record[F, C]) SetFaults(f F) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults = f
}

// Faults returns the faults in force.
func (r *Record[F, C]) Faults() F {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.faults
}

// Count counts one call with count, which adds one to a field of C, and
// returns the faults in force.
func (r *Record[F, C]) Count(count func(*C)) F {
	r.mu.Lock()
	defer r.mu.Unlock()
	count(&r.calls)
	return r.faults
}

// Calls returns the counts of the calls received so far.
func (r *Record[F, C]) Calls() C {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// Update calls set with the item of items named name, holding mu, and
// reports whether there was one: a fake changes the state of one of its keys
// with it.
func Update[K comparable, V any](mu sync.Locker, items map[K]V, name K, set func(V)) bool {
	mu.Lock()
	defer mu.Unlock()
	item, ok := items[name]
	if ok {
		set(item)
	}
	return ok
}
