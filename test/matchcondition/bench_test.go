package matchcondition_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/admission"
)

// BenchmarkMatch is what the matchConditions cost the apiserver for a
// Secret that the webhook is not called for: the CPU behind row (b) of the
// write-path table in BENCHMARKS.md.
func BenchmarkMatch(b *testing.B) {
	m := newMatcher(b)
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "ns", Annotations: map[string]string{"owner": "team-a"}},
		Data:       map[string][]byte{"user": []byte("admin"), "password": []byte("hunter2-plain"), "url": []byte("postgres://db:5432/app")},
	}
	for b.Loop() {
		if sent, err := sent(b, m, admission.Create, s); sent || err != nil {
			b.Fatalf("sent = %v, err = %v", sent, err)
		}
	}
}
