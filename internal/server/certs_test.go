package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
)

// testCA issues serving certificates for 127.0.0.1.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// issue returns PEM certificate and key for 127.0.0.1 with the given serial,
// valid from notBefore for an hour.
func (ca *testCA) issue(t testing.TB, serial int64, notBefore time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "jwe-webhook"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    notBefore,
		NotAfter:     notBefore.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// writeAtomic replaces path with data by writing a temporary file beside it
// and renaming it over path.
func writeAtomic(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// certFiles writes a pair into dir and returns the file names.
func certFiles(t testing.TB, dir string, certPEM, keyPEM []byte) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeAtomic(t, certFile, certPEM)
	writeAtomic(t, keyFile, keyPEM)
	return certFile, keyFile
}

// newCertFiles writes a pair issued by a new CA into a temporary directory.
func newCertFiles(t testing.TB, serial int64, notBefore time.Time) (ca *testCA, certFile, keyFile string) {
	t.Helper()
	ca = newTestCA(t)
	certPEM, keyPEM := ca.issue(t, serial, notBefore)
	certFile, keyFile = certFiles(t, t.TempDir(), certPEM, keyPEM)
	return ca, certFile, keyFile
}

func TestCertSourceReload(t *testing.T) {
	ca, certFile, keyFile := newCertFiles(t, 100, time.Now().Add(-time.Minute))
	s, err := NewCertSource(certFile, keyFile, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if !s.Ready() {
		t.Error("Ready() = false with a valid certificate")
	}
	if changed, err := s.Reload(t.Context()); changed || err != nil {
		t.Errorf("Reload() of unchanged files = %v, %v; want false, nil", changed, err)
	}

	writeAtomic(t, certFile, []byte("not a certificate"))
	if _, err := s.Reload(t.Context()); err == nil {
		t.Error("Reload() of a broken certificate: no error")
	}
	if got := serialOf(t, s); got != 100 {
		t.Errorf("after a failed reload serving serial %d, want 100", got)
	}

	certB, keyB := ca.issue(t, 200, time.Now().Add(-time.Minute))
	certFiles(t, filepath.Dir(certFile), certB, keyB)
	if changed, err := s.Reload(t.Context()); !changed || err != nil {
		t.Fatalf("Reload() of a new pair = %v, %v; want true, nil", changed, err)
	}
	if got := serialOf(t, s); got != 200 {
		t.Errorf("after reload serving serial %d, want 200", got)
	}
}

func TestCertSourceNotReady(t *testing.T) {
	tests := map[string]time.Time{
		"expired":     time.Now().Add(-2 * time.Hour),
		"not yet due": time.Now().Add(time.Hour),
	}
	for name, notBefore := range tests {
		t.Run(name, func(t *testing.T) {
			_, certFile, keyFile := newCertFiles(t, 1, notBefore)
			s, err := NewCertSource(certFile, keyFile, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			if s.Ready() {
				t.Error("Ready() = true")
			}
		})
	}
}

func TestNewCertSourceMissingFile(t *testing.T) {
	dir := t.TempDir()
	_, err := NewCertSource(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), zap.NewNop())
	if err == nil {
		t.Fatal("NewCertSource with missing files: no error")
	}
}

func serialOf(t *testing.T, s *CertSource) int64 {
	t.Helper()
	c, err := s.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf.SerialNumber.Int64()
}
