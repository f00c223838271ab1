package kms

import (
	"strconv"
	"sync"
	"testing"
)

func TestMemo(t *testing.T) {
	var m Memo[int]
	if v, ok := m.Get("a"); ok || v != 0 {
		t.Fatalf("empty memo: Get = %d, %v", v, ok)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() { m.Put(strconv.Itoa(i), i) })
	}
	wg.Wait()
	for i := range 8 {
		if v, ok := m.Get(strconv.Itoa(i)); !ok || v != i {
			t.Errorf("Get(%d) = %d, %v", i, v, ok)
		}
	}
	m.Put("0", 10)
	if v, _ := m.Get("0"); v != 10 {
		t.Errorf("after a second Put: %d, want 10", v)
	}
}
