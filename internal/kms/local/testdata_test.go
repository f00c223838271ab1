package local

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

var update = flag.Bool("update", false, "regenerate the keys in testdata")

// TestGenerateTestdata writes fresh test keys to testdata. Run it with
//
//	go test ./internal/kms/local -run TestGenerateTestdata -update
//
// The other tests derive what they expect from the files, so any fresh set
// passes.
func TestGenerateTestdata(t *testing.T) {
	if !*update {
		t.Skip("run with -update to regenerate testdata")
	}
	rsaA, rsaB, rsaF := genRSA(t, 2048), genRSA(t, 2048), genRSA(t, 2048)
	ecC, ecD := genEC(t, elliptic.P256()), genEC(t, elliptic.P384())
	ecE, ecG := genEC(t, elliptic.P256()), genEC(t, elliptic.P384())
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	certDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "jwe-webhook test key"},
		NotBefore:    time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:     x509.KeyUsageKeyAgreement,
	}, &x509.Certificate{Subject: pkix.Name{CommonName: "jwe-webhook test key"}}, &ecC.PublicKey, ecC)
	if err != nil {
		t.Fatal(err)
	}
	ecSEC1 := func(k *ecdsa.PrivateKey) []byte {
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pemBlock("EC PRIVATE KEY", der)
	}

	files := map[string][]byte{
		"rsa2048-pkcs1.pem":        pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaA)),
		"rsa2048-pkcs1.spki.pem":   pemBlock("PUBLIC KEY", marshalSPKI(t, &rsaA.PublicKey)),
		"rsa2048-pkcs8.pem":        pemBlock("PRIVATE KEY", marshalPKCS8(t, rsaB)),
		"rsa2048-pkcs8.pkcs1.pem":  pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rsaB.PublicKey)),
		"ec-p256-sec1.pem":         ecSEC1(ecC),
		"ec-p256-sec1.crt":         pemBlock("CERTIFICATE", certDER),
		"ec-p384-pkcs8.pem":        pemBlock("PRIVATE KEY", marshalPKCS8(t, ecD)),
		"ec-p384-pkcs8.spki.pem":   pemBlock("PUBLIC KEY", marshalSPKI(t, &ecD.PublicKey)),
		"ec-p256.jwk":              marshalJSON(t, jose.JSONWebKey{Key: ecE}),
		"ec-p256.pub.jwk":          marshalJSON(t, jose.JSONWebKey{Key: &ecE.PublicKey}),
		"set.jwks":                 marshalJSON(t, jwkSet(rsaF, ecG)),
		"set.pub.jwks":             marshalJSON(t, jwkSet(&rsaF.PublicKey, &ecG.PublicKey)),
		"reject-rsa1024.pem":       pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(genRSA(t, 1024))),
		"reject-ec-p521-sec1.pem":  ecSEC1(genEC(t, elliptic.P521())),
		"reject-ed25519-pkcs8.pem": pemBlock("PRIVATE KEY", marshalPKCS8(t, ed)),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join("testdata", name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// jwkSet is a JWK Set of an RSA key with its own kid, use and alg and an EC key
// with none of them.
func jwkSet(rsaKey, ecKey crypto.PublicKey) jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: rsaKey, KeyID: "hr-2026", Use: "enc", Algorithm: "RSA-OAEP"},
		{Key: ecKey},
	}}
}

func genRSA(t *testing.T, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func genEC(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func marshalPKCS8(t *testing.T, k any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func marshalSPKI(t *testing.T, k any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func marshalJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
