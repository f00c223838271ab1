package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// clientCert issues a certificate for client authentication (or, with
// usage, another) named cn and dnsNames.
func (ca *testCA) clientCert(t testing.TB, cn string, dnsNames []string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key := newKey(t)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     dnsNames,
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func (ca *testCA) pem() []byte {
	return pemBlock("CERTIFICATE", ca.cert.Raw)
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// post sends a review to ts as a client with certs (none when nil) and
// returns the status and body, or the error of a refused handshake.
func (ts *testServer) post(t *testing.T, certs ...tls.Certificate) (int, []byte, error) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs:      ts.ca.pool,
		Certificates: certs,
	}}}
	defer client.CloseIdleConnections()
	resp, err := client.Post("https://"+ts.addr+"/mutate", "application/json", bytes.NewReader(reviewBody(t, "u1")))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

func TestClientAuth(t *testing.T) {
	trusted, other := newTestCA(t), newTestCA(t)
	caFile := filepath.Join(t.TempDir(), "client-ca.crt")
	writeAtomic(t, caFile, trusted.pem())
	ts := startServer(t, patching, Config{ClientCAFile: caFile, ClientAllowedNames: []string{"kube-apiserver", "apiserver.example"}})

	tests := []struct {
		name   string
		certs  []tls.Certificate
		status int // 0: the handshake is refused
	}{
		{"allowed by common name", []tls.Certificate{trusted.clientCert(t, "kube-apiserver", nil, x509.ExtKeyUsageClientAuth)}, http.StatusOK},
		{"allowed by DNS SAN", []tls.Certificate{trusted.clientCert(t, "x", []string{"apiserver.example"}, x509.ExtKeyUsageClientAuth)}, http.StatusOK},
		{"no certificate", nil, 0},
		{"another CA", []tls.Certificate{other.clientCert(t, "kube-apiserver", nil, x509.ExtKeyUsageClientAuth)}, 0},
		{"not for client auth", []tls.Certificate{trusted.clientCert(t, "kube-apiserver", nil, x509.ExtKeyUsageServerAuth)}, 0},
		{"name not allowed", []tls.Certificate{trusted.clientCert(t, "someone", []string{"someone.example"}, x509.ExtKeyUsageClientAuth)}, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, err := ts.post(t, tt.certs...)
			if tt.status == 0 {
				if err == nil {
					t.Fatalf("status %d, want the handshake refused", status)
				}
				return
			}
			if err != nil || status != tt.status {
				t.Fatalf("status %d, error %v; want %d", status, err, tt.status)
			}
			// The patch, and so the plaintext, is base64 in the response.
			if patched := bytes.Contains(body, []byte(`"patch"`)); patched != (tt.status == http.StatusOK) {
				t.Errorf("response holds a patch: %v, want %v: %s", patched, tt.status == http.StatusOK, body)
			}
		})
	}
	if ts.logs.FilterMessage("client certificate not allowed").Len() != 1 {
		t.Error("the refused name is not logged once")
	}

	// A new bundle applies without a restart; a broken one keeps the last.
	writeAtomic(t, caFile, other.pem())
	eventually(t, "the other CA to be trusted", func() bool {
		status, _, _ := ts.post(t, other.clientCert(t, "kube-apiserver", nil, x509.ExtKeyUsageClientAuth))
		return status == http.StatusOK
	})
	if _, _, err := ts.post(t, trusted.clientCert(t, "kube-apiserver", nil, x509.ExtKeyUsageClientAuth)); err == nil {
		t.Error("a client of the CA no longer in the bundle was accepted")
	}
	writeAtomic(t, caFile, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	eventually(t, "the failed reload to be logged", func() bool {
		return ts.logs.FilterMessage("reload client CA bundle; keeping the current one").Len() > 0
	})
	if status, _, err := ts.post(t, other.clientCert(t, "kube-apiserver", nil, x509.ExtKeyUsageClientAuth)); status != http.StatusOK {
		t.Errorf("after a broken bundle: status %d, error %v; want 200 with the last good bundle", status, err)
	}
}

func TestClientAuthConfig(t *testing.T) {
	_, certFile, keyFile := newCertFiles(t, 1, time.Now().Add(-time.Minute))
	dir := t.TempDir()
	tests := map[string]struct {
		cfg  Config
		want string
	}{
		"names without CA": {Config{ClientAllowedNames: []string{"a"}}, "need a client CA bundle"},
		"missing CA file":  {Config{ClientCAFile: filepath.Join(dir, "nope.crt")}, "nope.crt"},
		"empty CA file":    {Config{ClientCAFile: writeFile(t, dir, "empty.crt", nil)}, "no PEM certificate found"},
		"key in CA file":   {Config{ClientCAFile: writeFile(t, dir, "key.crt", pemBlock("PRIVATE KEY", []byte{1}))}, `PEM block 1 is a "PRIVATE KEY"`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			tt.cfg.CertFile, tt.cfg.KeyFile = certFile, keyFile
			_, err := New(tt.cfg, patching, zap.NewNop())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	writeAtomic(t, path, data)
	return path
}

func TestMetricsPort(t *testing.T) {
	_, certFile, keyFile := newCertFiles(t, 1, time.Now().Add(-time.Minute))
	var keysErr error
	var details []string
	srv, err := New(Config{
		CertFile: certFile, KeyFile: keyFile,
		Metrics:      http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "metrics\n") }),
		ReadyChecks:  []func() error{func() error { return keysErr }},
		ReadyDetails: func() []string { return details },
	}, patching, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Code, rec.Body.String()
	}
	for path, want := range map[string]string{"/metrics": "metrics\n", "/healthz": "ok\n", "/readyz": "ok\n"} {
		if code, body := get(path); code != http.StatusOK || body != want {
			t.Errorf("GET %s: %d %q, want 200 %q", path, code, body, want)
		}
	}
	if code, _ := get("/mutate"); code != http.StatusNotFound {
		t.Errorf("GET /mutate on the metrics port: %d, want 404", code)
	}
	details = []string{"key configuration: broken, last good keys in use", "key service vault: retrying"}
	if code, body := get("/readyz"); code != http.StatusOK || body != "ok\n"+strings.Join(details, "\n")+"\n" {
		t.Errorf("/readyz with details: %d %q, want 200 with the details after ok", code, body)
	}
	keysErr = errors.New("key configuration invalid")
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "key configuration invalid\n") || !strings.Contains(body, details[1]) {
		t.Errorf("/readyz with a failing check: %d %q, want 503 with its error and the details", code, body)
	}
	if srv.CertNotAfter().IsZero() {
		t.Error("CertNotAfter is zero with a certificate loaded")
	}
}

// TestServeMetricsListener serves both ports and shuts both down.
func TestServeMetricsListener(t *testing.T) {
	_, certFile, keyFile := newCertFiles(t, 1, time.Now().Add(-time.Minute))
	srv, err := New(Config{CertFile: certFile, KeyFile: keyFile}, patching, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, mln) }()
	resp, err := http.Get("http://" + mln.Addr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz on the metrics port: %d, want 200", resp.StatusCode)
	}
	cancel()
	if err := waitDone(t, done); err != nil {
		t.Errorf("Serve returned %v after cancellation, want nil", err)
	}
	if _, err := net.Dial("tcp", mln.Addr().String()); err == nil {
		t.Error("the metrics port still accepts connections after shutdown")
	}
}
