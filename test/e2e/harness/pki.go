package harness

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CA is a throwaway certificate authority that signs the serving certificates
// of the apiserver and the webhook and the admin's client certificate.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// CertFile is the CA certificate, PEM.
	CertFile string
	// PEM is the content of CertFile.
	PEM []byte
}

// CertPair names a certificate and its private key on disk.
type CertPair struct {
	CertFile, KeyFile string
}

// NewCA creates a CA and writes its certificate to dir/ca.crt.
func NewCA(dir string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	// x509.CreateCertificate picks a random serial number when none is set.
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "jwe-webhook e2e CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("self-sign CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	ca := &CA{cert: cert, key: key, CertFile: filepath.Join(dir, "ca.crt"), PEM: pemBlock("CERTIFICATE", der)}
	if err := os.WriteFile(ca.CertFile, ca.PEM, 0o600); err != nil {
		return nil, fmt.Errorf("write CA certificate: %w", err)
	}
	return ca, nil
}

// Pool returns a cert pool holding the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// ServingCert issues a server certificate for 127.0.0.1 and localhost and
// writes it to dir/name.crt and dir/name.key.
func (ca *CA) ServingCert(dir, name string) (CertPair, error) {
	return ca.issue(dir, name, &x509.Certificate{
		Subject:     pkix.Name{CommonName: name},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:    []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
}

// ClientCert issues a client certificate for user in groups (the apiserver
// reads the common name as the user and organizations as groups).
func (ca *CA) ClientCert(dir, name, user string, groups ...string) (CertPair, error) {
	return ca.issue(dir, name, &x509.Certificate{
		Subject:     pkix.Name{CommonName: user, Organization: groups},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

func (ca *CA) issue(dir, name string, tmpl *x509.Certificate) (CertPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return CertPair{}, fmt.Errorf("generate key for %q: %w", name, err)
	}
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return CertPair{}, fmt.Errorf("sign certificate %q: %w", name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return CertPair{}, fmt.Errorf("marshal key for %q: %w", name, err)
	}
	p := CertPair{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	if err := writeFiles(map[string][]byte{
		p.CertFile: pemBlock("CERTIFICATE", der),
		p.KeyFile:  pemBlock("PRIVATE KEY", keyDER),
	}); err != nil {
		return CertPair{}, err
	}
	return p, nil
}

// KeyPair names a JWE key pair on disk: the private key as PKCS#8 PEM (what the
// webhook's --key-file reads) and the public key as SPKI PEM (what jwe-encrypt -r
// reads).
type KeyPair struct {
	PrivateFile, PublicFile string
}

// NewRSAKeyPair generates an RSA-2048 key pair and writes it to
// dir/name.pem and dir/name.pub.pem.
func NewRSAKeyPair(dir, name string) (KeyPair, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return KeyPair{}, fmt.Errorf("generate RSA key %q: %w", name, err)
	}
	priv, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return KeyPair{}, fmt.Errorf("marshal private key %q: %w", name, err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return KeyPair{}, fmt.Errorf("marshal public key %q: %w", name, err)
	}
	kp := KeyPair{PrivateFile: filepath.Join(dir, name+".pem"), PublicFile: filepath.Join(dir, name+".pub.pem")}
	if err := writeFiles(map[string][]byte{
		kp.PrivateFile: pemBlock("PRIVATE KEY", priv),
		kp.PublicFile:  pemBlock("PUBLIC KEY", pub),
	}); err != nil {
		return KeyPair{}, err
	}
	return kp, nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func writeFiles(files map[string][]byte) error {
	for name, data := range files {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", filepath.Base(name), err)
		}
	}
	return nil
}
