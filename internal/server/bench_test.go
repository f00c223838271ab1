package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
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

// The benchmarks time the whole /mutate handler (decode, parse, unwrap,
// decrypt, patch, encode) and report it as a ratio to a baseline measured in
// the same run, so the figures compare across machines:
//
//	x-rsa        handler time ÷ one rsa.DecryptOAEP with the same key
//	x-ideal      handler time ÷ the ideal parallel time of its RSA decrypts
//	x-latency    handler time ÷ the key service's injected latency

func loadBenchKey(b *testing.B, name string) *local.Key {
	b.Helper()
	ks, err := local.LoadFile("testdata/" + name)
	if err != nil {
		b.Fatal(err)
	}
	return ks[0]
}

// benchRequestTimeout is the benchmarks' request deadline: one no review
// reaches in practice.
const benchRequestTimeout = 24 * time.Hour

// benchHandler is the real /mutate handler over a keyring of entries.
func benchHandler(b *testing.B, entries ...kms.Entry) http.Handler {
	b.Helper()
	return benchHandlerWith(b, admission.Options{}, entries...)
}

// benchHandlerWith is benchHandler with a reviewer tuned by opts.
func benchHandlerWith(b *testing.B, opts admission.Options, entries ...kms.Entry) http.Handler {
	b.Helper()
	kr, err := kms.NewKeyring(kms.Options{}, entries...)
	if err != nil {
		b.Fatal(err)
	}
	_, certFile, keyFile := newCertFiles(b, 1, time.Now().Add(-time.Minute))
	srv, err := New(Config{CertFile: certFile, KeyFile: keyFile}, admission.NewReviewer(kr, opts), zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	// A benchmark must not fail on wall time: on a loaded machine a review
	// of 1,000 values can outlast the default request deadline and be
	// answered 504. The handler is called directly, not through an
	// http.Server, so no write timeout bounds it either.
	srv.cfg.RequestTimeout = benchRequestTimeout
	return srv.Handler()
}

// reviewFor encodes an AdmissionReview creating Secret ns/db with values
// encrypted to k.
func reviewFor(b *testing.B, k *local.Key, values int) []byte {
	b.Helper()
	data := map[string][]byte{}
	for i := range values {
		v, err := jwe.Encrypt([]byte(fmt.Sprintf("secret-%d", i)), jwe.Scope{Namespace: "ns", Name: "db"}, "",
			jwe.PublicKey{Key: k.Public(), KeyID: k.KeyID()})
		if err != nil {
			b.Fatal(err)
		}
		data[fmt.Sprintf("key-%d", i)] = []byte(v)
	}
	obj, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "db", "namespace": "ns"}, "data": data})
	review, _ := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "bench", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Secret"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "secrets"},
			Namespace: "ns", Name: "db", Operation: admissionv1.Create,
			Object: k8sruntime.RawExtension{Raw: obj},
		},
	})
	return review
}

// serve runs one request and fails the benchmark unless it was patched.
func serve(b *testing.B, h http.Handler, body []byte) {
	req := httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte(`"patch"`)) {
		b.Fatalf("status %d: %s", rec.Code, rec.Body.Bytes())
	}
}

// rsaDecryptNs measures one RSA-OAEP-SHA256 decrypt with the key in file.
func rsaDecryptNs(b *testing.B, file string) float64 {
	data, err := os.ReadFile("testdata/" + file)
	if err != nil {
		b.Fatal(err)
	}
	block, _ := pem.Decode(data)
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		b.Fatal(err)
	}
	priv := key.(*rsa.PrivateKey)
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &priv.PublicKey, make([]byte, 32), nil)
	if err != nil {
		b.Fatal(err)
	}
	// testing.Benchmark cannot run inside a benchmark: time a loop instead,
	// long enough to smooth out the scheduler.
	start, n := time.Now(), 0
	for n < 20 || time.Since(start) < 500*time.Millisecond {
		if _, err := rsa.DecryptOAEP(sha256.New(), nil, priv, ct, nil); err != nil {
			b.Fatal(err)
		}
		n++
	}
	return float64(time.Since(start).Nanoseconds()) / float64(n)
}

func perOp(b *testing.B) float64 { return float64(b.Elapsed().Nanoseconds()) / float64(b.N) }

func BenchmarkOneValue(b *testing.B) {
	for _, name := range []string{"rsa-2048.pem", "rsa-4096.pem"} {
		b.Run(name, func(b *testing.B) {
			k := loadBenchKey(b, name)
			h := benchHandler(b, kms.Entry{Decrypter: k, Provider: "local"})
			body := reviewFor(b, k, 1)
			base := rsaDecryptNs(b, name)
			b.ResetTimer()
			for b.Loop() {
				serve(b, h, body)
			}
			b.ReportMetric(perOp(b)/base, "x-rsa")
		})
	}
}

func BenchmarkTenValuesRSA4096(b *testing.B) {
	k := loadBenchKey(b, "rsa-4096.pem")
	h := benchHandler(b, kms.Entry{Decrypter: k, Provider: "local"})
	body := reviewFor(b, k, 10)
	ideal := 10 * rsaDecryptNs(b, "rsa-4096.pem") / float64(min(10, runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	for b.Loop() {
		serve(b, h, body)
	}
	b.ReportMetric(perOp(b)/ideal, "x-ideal")
}

func BenchmarkCacheHit(b *testing.B) {
	k := loadBenchKey(b, "rsa-2048.pem")
	cache := kms.NewCache(1000, time.Hour, time.Minute)
	h := benchHandler(b, kms.Entry{Decrypter: cache.Decrypter(k), Provider: "local"})
	body := reviewFor(b, k, 1)
	serve(b, h, body) // fills the cache
	b.ResetTimer()
	for b.Loop() {
		serve(b, h, body)
	}
	b.ReportMetric(perOp(b)/1e3, "µs/admission")
	if s := cache.Stats(); s.Misses != 1 {
		b.Fatalf("cache misses %d, want 1", s.Misses)
	}
}

// slowService stands for a remote key service: latency, then a local unwrap.
type slowService struct {
	*local.Key
	latency time.Duration
}

func (s slowService) Unwrap(ctx context.Context, w jwe.Recipient) ([]byte, error) {
	t := time.NewTimer(s.latency)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.Key.Unwrap(ctx, w)
}

func BenchmarkTwentyValuesRemote(b *testing.B) {
	const latency = 20 * time.Millisecond
	k := loadBenchKey(b, "ec-p256.pem")
	h := benchHandler(b, kms.Entry{Decrypter: slowService{k, latency}, Provider: "gcpkms"})
	body := reviewFor(b, k, 20)
	b.ResetTimer()
	for b.Loop() {
		serve(b, h, body)
	}
	b.ReportMetric(perOp(b)/float64(latency.Nanoseconds()), "x-latency")
}
