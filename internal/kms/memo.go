package kms

import "sync"

// Memo keeps values by name for its lifetime, such as what a key service
// says of each key version. Its zero value is empty and ready; it is safe for
// concurrent use. Callers that find nothing fetch and Put: concurrent first
// callers may each fetch.
type Memo[V any] struct {
	mu sync.Mutex
	m  map[string]V
}

// Get returns the value put under name, and whether there is one.
func (m *Memo[V]) Get(name string) (V, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[name]
	return v, ok
}

// Put keeps v under name.
func (m *Memo[V]) Put(name string, v V) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = make(map[string]V)
	}
	m.m[name] = v
}
