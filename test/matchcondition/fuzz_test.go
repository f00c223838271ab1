package matchcondition_test

import "testing"

// FuzzMatchCondition checks, for any value, that the webhook is called when
// jwe.Detect accepts the value, and exactly when its first byte is one the
// detection contract allows. The seeds run in every go test.
func FuzzMatchCondition(f *testing.F) {
	for _, v := range values(f) {
		f.Add(v)
	}
	m := newMatcher(f)
	f.Fuzz(func(t *testing.T, v []byte) {
		check(t, m, v, true)
	})
}
