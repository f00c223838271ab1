package admission_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jwe-webhook/jwe-webhook/internal/admission"
	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/local"
)

// TestLimits checks each per-review limit refuses with 400, naming the data
// key where it was passed, before any key-service call.
func TestLimits(t *testing.T) {
	f := newFixture(t)
	scope := jwe.Scope{Namespace: "team-a"}
	five := map[string][]byte{"plain": []byte("not a JWE")}
	var fiveValues [][]byte
	for i := range 5 {
		v := encrypt(t, f.rsa, secrets[i%len(secrets)], scope)
		five[fmt.Sprintf("k%d", i)] = v
		fiveValues = append(fiveValues, v)
	}
	twoRecipients, err := jwe.Encrypt([]byte(secrets[0]), scope, "",
		jwe.PublicKey{Key: f.rsa.Public(), KeyID: f.rsa.KeyID()}, jwe.PublicKey{Key: f.ec.Public(), KeyID: f.ec.KeyID()})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		limits admission.Limits
		data   map[string][]byte
		want   []string
	}{
		{"values per Secret", admission.Limits{MaxValues: 3}, five,
			[]string{`data key "k3"`, "more than 3 JWE values", "--max-values-per-secret"}},
		{"recipients per value", admission.Limits{MaxRecipients: 1}, map[string][]byte{"multi": []byte(twoRecipients)},
			[]string{`data key "multi"`, "JWE has 2 recipients, more than the limit of 1"}},
		{"JWE bytes per review", admission.Limits{MaxJWEBytes: len(five["k0"]) + len(five["k1"]) + 1}, five,
			[]string{`data key "k2"`, fmt.Sprintf("add up to more than %d bytes", len(five["k0"])+len(five["k1"])+1), "--max-jwe-bytes"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			svc := &service{kr: f.keyring}
			spec := secretSpec{ns: "team-a", name: "db", data: c.data}
			resp := admission.NewReviewer(svc, admission.Options{Limits: c.limits}).Review(context.Background(), zap.NewNop(), spec.request(t))
			wantDenial(t, resp, http.StatusBadRequest, metav1.StatusReasonBadRequest, append(fiveValues, []byte(twoRecipients)), c.want...)
			if n := svc.peak.Load(); n != 0 {
				t.Errorf("the key service was called (%d in flight at most) before the limit refused the review", n)
			}
		})
	}

	t.Run("at the limits", func(t *testing.T) {
		limits := admission.Limits{MaxValues: 5, MaxRecipients: 2, MaxJWEBytes: 1 << 20}
		data := map[string][]byte{"multi": []byte(twoRecipients)}
		for i := range 300 {
			data[fmt.Sprintf("plain%d", i)] = []byte("plain values do not count")
		}
		for i := range 4 {
			data[fmt.Sprintf("k%d", i)] = five[fmt.Sprintf("k%d", i)]
		}
		spec := secretSpec{ns: "team-a", name: "db", data: data}
		resp := admission.NewReviewer(f.keyring, admission.Options{Limits: limits}).Review(context.Background(), zap.NewNop(), spec.request(t))
		if !resp.Allowed {
			t.Fatalf("denied: %s", resp.Result.Message)
		}
		if got := patched(t, spec.request(t), resp); got["multi"] != secrets[0] || got["k3"] != secrets[3] {
			t.Fatalf("not decrypted: multi %q k3 %q", got["multi"], got["k3"])
		}
	})
}

// TestReviewsInFlight checks a review past the process-wide limit is refused
// at once with 429 and a Retry-After, and that a finished review frees its
// place.
func TestReviewsInFlight(t *testing.T) {
	f := newFixture(t)
	svc := &service{kr: f.keyring, block: make(chan struct{}), entered: make(chan struct{}, 1)}
	r := admission.NewReviewer(svc, admission.Options{Limits: admission.Limits{MaxReviews: 1}})
	value := encrypt(t, f.rsa, secrets[0], jwe.Scope{})
	spec := secretSpec{ns: "team-a", name: "db", data: map[string][]byte{"pw": value}}

	first := make(chan *admissionv1.AdmissionResponse)
	go func() { first <- r.Review(context.Background(), zap.NewNop(), spec.request(t)) }()
	select {
	case <-svc.entered: // the first review holds the only place
	case <-time.After(time.Minute):
		t.Fatal("the first review never reached the key service")
	}
	sink := &logSink{}
	resp := r.Review(context.Background(), sink.logger(), spec.request(t))
	wantDenial(t, resp, http.StatusTooManyRequests, metav1.StatusReasonTooManyRequests, [][]byte{value}, "overloaded", "1 reviews in flight", "retry")
	if d := resp.Result.Details; d == nil || d.RetryAfterSeconds != 1 {
		t.Errorf("details %+v, want RetryAfterSeconds 1", d)
	}
	// Plain writes of other kinds are not limited.
	other := spec.request(t)
	other.Kind = metav1.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
	if resp := r.Review(context.Background(), zap.NewNop(), other); !resp.Allowed {
		t.Errorf("a ConfigMap was refused: %+v", resp.Result)
	}

	svc.block <- struct{}{}
	if resp := <-first; !resp.Allowed {
		t.Fatalf("first review denied: %s", resp.Result.Message)
	}
	svc.block = nil
	if resp := r.Review(context.Background(), zap.NewNop(), spec.request(t)); !resp.Allowed {
		t.Fatalf("a review after the first finished was denied: %s", resp.Result.Message)
	}
	if l := leaks(sink.String()); l != nil || sink.String() == "" {
		t.Fatalf("log %q (leaks %q)", sink.String(), l)
	}
}

// TestKeyServiceOverloaded checks a value refused because too many
// key-service calls are in flight is answered 429 with a Retry-After.
func TestKeyServiceOverloaded(t *testing.T) {
	f := newFixture(t)
	svc := &service{err: fmt.Errorf("unwrap with key %q: %w", f.rsa.KeyID(), kms.ErrOverloaded)}
	value := encrypt(t, f.rsa, secrets[0], jwe.Scope{})
	spec := secretSpec{ns: "team-a", name: "db", data: map[string][]byte{"pw": value}}
	resp := admission.NewReviewer(svc, admission.Options{}).Review(context.Background(), zap.NewNop(), spec.request(t))
	wantDenial(t, resp, http.StatusTooManyRequests, metav1.StatusReasonTooManyRequests, [][]byte{value}, `data key "pw"`, "overloaded, retry", "in flight")
	if d := resp.Result.Details; d == nil || d.RetryAfterSeconds != 1 {
		t.Errorf("details %+v, want RetryAfterSeconds 1", d)
	}
}

// heldKey is a local key whose unwraps wait for release, reporting on
// entered that they started.
type heldKey struct {
	*local.Key
	entered chan struct{}
	release chan struct{}
}

func (k heldKey) Unwrap(ctx context.Context, r jwe.Recipient) ([]byte, error) {
	k.entered <- struct{}{}
	<-k.release
	return k.Key.Unwrap(ctx, r)
}

// TestKeyServiceCallLimit goes through the keyring's own limit on
// key-service calls in flight: with its one place held by another call, a
// review is refused at once with 429, and accepted once the place is free.
func TestKeyServiceCallLimit(t *testing.T) {
	f := newFixture(t)
	held := heldKey{Key: f.ec, entered: make(chan struct{}, 1), release: make(chan struct{})}
	kr, err := kms.NewKeyring(kms.Options{Limit: kms.NewCallLimit(1)},
		kms.Entry{Decrypter: f.rsa, Provider: "local"}, kms.Entry{Decrypter: held, Provider: "gcpkms"})
	if err != nil {
		t.Fatal(err)
	}
	r := admission.NewReviewer(kr, admission.Options{})
	holder := secretSpec{ns: "team-a", name: "other", data: map[string][]byte{"k": encrypt(t, f.ec, secrets[1], jwe.Scope{})}}
	first := make(chan *admissionv1.AdmissionResponse)
	go func() { first <- r.Review(context.Background(), zap.NewNop(), holder.request(t)) }()
	select {
	case <-held.entered:
	case <-time.After(time.Minute):
		t.Fatal("the first review never reached the key service")
	}

	value := encrypt(t, f.rsa, secrets[0], jwe.Scope{})
	spec := secretSpec{ns: "team-a", name: "db", data: map[string][]byte{"pw": value}}
	resp := r.Review(context.Background(), zap.NewNop(), spec.request(t))
	wantDenial(t, resp, http.StatusTooManyRequests, metav1.StatusReasonTooManyRequests, [][]byte{value}, `data key "pw"`, "overloaded, retry", "1 calls in flight")

	close(held.release)
	if resp := <-first; !resp.Allowed {
		t.Fatalf("the first review was denied: %s", resp.Result.Message)
	}
	if resp := r.Review(context.Background(), zap.NewNop(), spec.request(t)); !resp.Allowed {
		t.Fatalf("denied once the key service was free: %s", resp.Result.Message)
	}
}
