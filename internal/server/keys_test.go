package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/local"
)

// /keys on the metrics port serves the key set, which reads back with the
// kids given; when a key service fails it answers 503 without the reason.
func TestKeySet(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const kid = "vault://transit/k8s?version=3"
	var keysErr error
	keys := func(context.Context) ([]jwe.PublicKey, error) {
		if keysErr != nil {
			return nil, keysErr
		}
		return []jwe.PublicKey{{Key: &priv.PublicKey, KeyID: kid}}, nil
	}
	_, certFile, keyFile := newCertFiles(t, 1, time.Now().Add(-time.Minute))
	srv, err := New(Config{CertFile: certFile, KeyFile: keyFile, Keys: KeySet(keys, zap.NewNop())}, patching, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/keys", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("GET /keys: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	pks, err := local.ParsePublicKeys(rec.Body.Bytes())
	if err != nil || len(pks) != 1 || pks[0].KeyID != kid || !priv.PublicKey.Equal(pks[0].Key) {
		t.Fatalf("the key set reads back as %v, %v", pks, err)
	}
	if strings.Contains(rec.Body.String(), `"d"`) {
		t.Fatal("private member in /keys")
	}

	// An answer is reused for a minute: no key-service call in between.
	calls := 0
	counted := keys
	keys = func(ctx context.Context) ([]jwe.PublicKey, error) { calls++; return counted(ctx) }
	now := time.Unix(1e9, 0)
	ks := &keySet{keys: func(ctx context.Context) ([]jwe.PublicKey, error) { return keys(ctx) }, log: zap.NewNop(), now: func() time.Time { return now }}
	for range 3 {
		if _, err := ks.get(t.Context()); err != nil || calls != 1 {
			t.Fatalf("within a minute: %d calls, %v", calls, err)
		}
	}
	now = now.Add(keySetTTL)
	if _, err := ks.get(t.Context()); err != nil || calls != 2 {
		t.Fatalf("after a minute: %d calls, %v", calls, err)
	}

	keysErr = errors.New("vault: permission denied on transit/keys/k8s")
	srv, err = New(Config{CertFile: certFile, KeyFile: keyFile, Keys: KeySet(keys, zap.NewNop())}, patching, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	rec = httptest.NewRecorder()
	srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/keys", nil))
	if rec.Code != http.StatusServiceUnavailable || strings.Contains(rec.Body.String(), "permission") {
		t.Fatalf("GET /keys with a key service down: %d %q", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/keys", nil))
	if rec.Code != http.StatusNotFound && rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET /keys on the webhook port: %d, want it on the metrics port only", rec.Code)
	}
}
