package metrics

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"

	"github.com/jwe-webhook/jwe-webhook/internal/admission"
	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/local"
)

// Names that must appear in no label: a scrape is readable by anyone who
// reaches the metrics port.
const (
	namespace  = "ns-metrics-7f3a"
	secretName = "db-credentials-91c2"
	plaintext  = "PLAINTEXT-MARKER-0b7e"
	gcpKey     = "projects/p/locations/global/keyRings/r/cryptoKeys/k"
)

func newLocalKey(t *testing.T) *local.Key {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := local.ParsePrivateKeys(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	return keys[0]
}

// failingKMS stands for a Cloud KMS key whose service is down: it answers to
// every version of the key and fails each call.
type failingKMS struct{}

func (failingKMS) KeyID() string { return gcpKey }
func (failingKMS) MatchKeyID(kid string) bool {
	return strings.HasPrefix(kid, gcpKey+"/cryptoKeyVersions/")
}
func (failingKMS) Unwrap(context.Context, jwe.Recipient) ([]byte, error) {
	return nil, errors.New("rpc error: code = Unavailable")
}

func encrypt(t *testing.T, scope jwe.Scope, pub any, kid string) []byte {
	t.Helper()
	v, err := jwe.Encrypt([]byte(plaintext), scope, "", jwe.PublicKey{Key: pub, KeyID: kid})
	if err != nil {
		t.Fatal(err)
	}
	return []byte(v)
}

func request(t *testing.T, op admissionv1.Operation, data map[string][]byte) *admissionv1.AdmissionRequest {
	t.Helper()
	obj, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": secretName, "namespace": namespace}, "data": data})
	if err != nil {
		t.Fatal(err)
	}
	return &admissionv1.AdmissionRequest{
		UID: "uid", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Secret"},
		Namespace: namespace, Name: secretName, Operation: op,
		Object: k8sruntime.RawExtension{Raw: obj},
	}
}

// TestScrape drives reviews of every outcome through the real Reviewer and
// keyring wrapped as the webhook wraps them, then scrapes /metrics.
func TestScrape(t *testing.T) {
	m := New("v1.2.3-test")
	cache := kms.NewCache(10, time.Hour, time.Minute)
	m.CacheStats(cache.Stats)
	key, other := newLocalKey(t), newLocalKey(t)
	kr, err := kms.NewKeyring(kms.Options{Cache: cache, Observer: m},
		kms.Entry{Decrypter: key, Provider: "local"},
		kms.Entry{Decrypter: failingKMS{}, Provider: "gcpkms"},
	)
	if err != nil {
		t.Fatal(err)
	}
	notAfter := time.Unix(1900000000, 0)
	m.CertExpiry(func() time.Time { return notAfter })
	rev := m.Reviewer(admission.NewReviewer(kr, admission.Options{}))

	good := encrypt(t, jwe.Scope{Namespace: namespace}, key.Public(), key.KeyID())
	reviews := []struct {
		op   admissionv1.Operation
		data map[string][]byte
		want string
	}{
		{admissionv1.Create, map[string][]byte{"password": good}, resultPatched},
		{admissionv1.Update, map[string][]byte{"password": good}, resultPatched}, // a cache hit
		{admissionv1.Create, map[string][]byte{"password": encrypt(t, jwe.Scope{Namespace: "elsewhere"}, key.Public(), key.KeyID())}, resultDenied},
		{admissionv1.Create, map[string][]byte{"password": encrypt(t, jwe.Scope{}, other.Public(), other.KeyID())}, resultDenied},
		{admissionv1.Create, map[string][]byte{"password": encrypt(t, jwe.Scope{}, other.Public(), gcpKey+"/cryptoKeyVersions/3")}, resultError},
		{admissionv1.Create, map[string][]byte{"config": []byte("plain")}, resultAllowed},
		{admissionv1.Delete, nil, resultAllowed},
		{"PATCH", nil, resultAllowed},
	}
	for i, r := range reviews {
		resp := rev.Review(t.Context(), zap.NewNop(), request(t, r.op, r.data))
		if got := reviewResult(resp); got != r.want {
			t.Fatalf("review %d: %s (%+v), want %s", i, got, resp.Result, r.want)
		}
	}

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	scrape := string(body)

	for _, want := range []string{
		`jwe_webhook_admission_reviews_total{operation="CREATE",result="patched"} 1`,
		`jwe_webhook_admission_reviews_total{operation="UPDATE",result="patched"} 1`,
		`jwe_webhook_admission_reviews_total{operation="CREATE",result="denied"} 2`,
		`jwe_webhook_admission_reviews_total{operation="CREATE",result="error"} 1`,
		`jwe_webhook_admission_reviews_total{operation="CREATE",result="allowed"} 1`,
		`jwe_webhook_admission_reviews_total{operation="DELETE",result="allowed"} 1`,
		`jwe_webhook_admission_reviews_total{operation="other",result="allowed"} 1`,
		`jwe_webhook_admission_review_duration_seconds_count{result="patched"} 2`,
		`jwe_webhook_admission_denials_total{reason="Forbidden"} 2`,
		`jwe_webhook_admission_denials_total{reason="ServiceUnavailable"} 1`,
		fmt.Sprintf(`jwe_webhook_unwraps_total{kid=%q,provider="local",result="ok"} 2`, key.KeyID()),
		fmt.Sprintf(`jwe_webhook_unwraps_total{kid=%q,provider="gcpkms",result="error"} 1`, gcpKey),
		`jwe_webhook_key_service_request_duration_seconds_count{provider="local"} 1`,
		`jwe_webhook_key_service_request_duration_seconds_count{provider="gcpkms"} 1`,
		`jwe_webhook_cache_hits_total 1`,
		`jwe_webhook_cache_misses_total 2`,
		`jwe_webhook_cache_evictions_total 0`,
		`jwe_webhook_cache_entries 1`,
		`jwe_webhook_serving_certificate_expiry_timestamp_seconds 1.9e+09`,
		fmt.Sprintf(`jwe_webhook_build_info{goversion=%q,version="v1.2.3-test"} 1`, runtime.Version()),
		`go_goroutines `,
	} {
		if !strings.Contains(scrape, "\n"+want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	// The kid of the recipient no configured key has is never a label; nor
	// is the version of the Cloud KMS key, only the configured key.
	for _, leak := range []string{plaintext, string(good[:40]), namespace, secretName, other.KeyID(), "cryptoKeyVersions", "elsewhere"} {
		if strings.Contains(scrape, leak) {
			t.Errorf("scrape contains %q", leak)
		}
	}
}

func TestDenialReason(t *testing.T) {
	tests := []struct {
		resp *admissionv1.AdmissionResponse
		want string
	}{
		{nil, "Unknown"},
		{&admissionv1.AdmissionResponse{}, "Unknown"},
		{&admissionv1.AdmissionResponse{Result: &metav1.Status{Code: 403, Reason: "Forbidden"}}, "Forbidden"},
		{&admissionv1.AdmissionResponse{Result: &metav1.Status{Code: 400, Reason: "Bad Request"}}, "BadRequest"},
		{&admissionv1.AdmissionResponse{Result: &metav1.Status{Code: 503, Reason: metav1.StatusReasonTimeout}}, "Timeout"},
		{&admissionv1.AdmissionResponse{Result: &metav1.Status{Code: 429}}, "TooManyRequests"},
		// A reason made of the message never becomes a label value.
		{&admissionv1.AdmissionResponse{Result: &metav1.Status{Code: 418, Reason: "key \"password\": " + plaintext}}, "Unknown"},
	}
	for _, tt := range tests {
		if got := denialReason(tt.resp); got != tt.want {
			t.Errorf("denialReason(%+v) = %s, want %s", tt.resp, got, tt.want)
		}
	}
}

// TestObserverWithoutCache counts every unwrap as a key-service call and
// registers no cache series.
func TestObserverWithoutCache(t *testing.T) {
	m := New("dev")
	key := newLocalKey(t)
	kr, err := kms.NewKeyring(kms.Options{Observer: m},
		kms.Entry{Decrypter: key, Provider: "local"},
		kms.Entry{Decrypter: failingKMS{}, Provider: "gcpkms"},
	)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Unwrap(t.Context(), namespace, jwe.Recipient{KeyID: key.KeyID() + "-other"}); !errors.Is(err, jwe.ErrKeyMismatch) {
		t.Errorf("a local key answered to another kid: %v", err)
	}
	if _, err := kr.Unwrap(t.Context(), namespace, jwe.Recipient{KeyID: gcpKey + "/cryptoKeyVersions/3"}); err == nil || errors.Is(err, jwe.ErrKeyMismatch) {
		t.Errorf("a key family lost its MatchKeyID behind the chain: %v", err)
	}
	wrapped := jwe.PublicKey{Key: key.Public(), KeyID: key.KeyID()}
	v, err := jwe.Encrypt([]byte(plaintext), jwe.Scope{}, "", wrapped)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := jwe.Parse([]byte(v))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, _, err := obj.Decrypt(t.Context(), unwrapFunc(func(ctx context.Context, r jwe.Recipient) ([]byte, error) {
			return kr.Unwrap(ctx, namespace, r)
		})); err != nil {
			t.Fatal(err)
		}
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	scrape := rec.Body.String()
	if !strings.Contains(scrape, `jwe_webhook_key_service_request_duration_seconds_count{provider="local"} 2`) {
		t.Errorf("scrape lacks two key-service calls:\n%s", scrape)
	}
	if strings.Contains(scrape, "jwe_webhook_cache_") {
		t.Error("cache series without a cache")
	}
	if strings.Contains(scrape, "jwe_webhook_serving_certificate_expiry") {
		t.Error("certificate expiry without CertExpiry")
	}
}

type unwrapFunc func(context.Context, jwe.Recipient) ([]byte, error)

func (f unwrapFunc) Unwrap(ctx context.Context, r jwe.Recipient) ([]byte, error) {
	return f(ctx, r)
}

func TestUnwrapResult(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{nil, "ok"},
		{fmt.Errorf("k: %w", jwe.ErrKeyMismatch), "mismatch"},
		{fmt.Errorf("k: %w", context.DeadlineExceeded), "timeout"},
		{fmt.Errorf("k: %w", kms.ErrOverloaded), "overloaded"},
		{errors.New("unavailable"), "error"},
	} {
		if got := unwrapResult(tt.err); got != tt.want {
			t.Errorf("unwrapResult(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestReviewResult(t *testing.T) {
	tests := []struct {
		resp *admissionv1.AdmissionResponse
		want string
	}{
		{nil, resultError},
		{&admissionv1.AdmissionResponse{Allowed: true}, resultAllowed},
		{&admissionv1.AdmissionResponse{Allowed: true, Patch: []byte("[]")}, resultPatched},
		{&admissionv1.AdmissionResponse{Result: &metav1.Status{Code: 403}}, resultDenied},
		{&admissionv1.AdmissionResponse{}, resultDenied},
		{&admissionv1.AdmissionResponse{Result: &metav1.Status{Code: 504}}, resultError},
		{&admissionv1.AdmissionResponse{Result: &metav1.Status{Code: 429}}, resultError},
	}
	for _, tt := range tests {
		if got := reviewResult(tt.resp); got != tt.want {
			t.Errorf("reviewResult(%+v) = %s, want %s", tt.resp, got, tt.want)
		}
	}
}

func TestKeyConfig(t *testing.T) {
	m := New("dev")
	ok, loaded := true, time.Unix(1800000000, 500_000_000)
	m.KeyConfig(func() (bool, time.Time) { return ok, loaded })
	scrape := func() string {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return rec.Body.String()
	}
	for _, want := range []string{
		"jwe_webhook_key_config_last_reload_success 1\n",
		"jwe_webhook_key_config_last_reload_success_timestamp_seconds 1.8000000005e+09\n",
	} {
		if s := scrape(); !strings.Contains(s, want) {
			t.Errorf("scrape lacks %q:\n%s", want, s)
		}
	}
	ok = false
	if s := scrape(); !strings.Contains(s, "jwe_webhook_key_config_last_reload_success 0\n") {
		t.Errorf("a failed reload is not reported:\n%s", s)
	}
}

func TestKeyServices(t *testing.T) {
	m := New("dev")
	m.KeyServices(func() []KeyServiceState {
		return []KeyServiceState{{KeyID: "vault://transit/a", Provider: "vault"}, {KeyID: "projects/p/k", Provider: "gcpkms", Reached: true}}
	})
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`jwe_webhook_key_service_reached{kid="vault://transit/a",provider="vault"} 0`,
		`jwe_webhook_key_service_reached{kid="projects/p/k",provider="gcpkms"} 1`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("scrape lacks %q:\n%s", want, rec.Body.String())
		}
	}
}
