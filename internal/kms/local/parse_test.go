package local

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwe-webhook/jwe-webhook/internal/testkit"
)

// wantKey describes a key a fixture should hold. An empty kid means the
// thumbprint, which the tests compute with go-jose.
type wantKey struct {
	desc string // "RSA-2048", "P-256"
	kid  string
	alg  string
}

func TestParsePrivateKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want []wantKey
	}{
		{"rsa2048-pkcs1.pem", []wantKey{{desc: "RSA-2048", alg: "RSA-OAEP-256"}}},
		{"rsa2048-pkcs8.pem", []wantKey{{desc: "RSA-2048", alg: "RSA-OAEP-256"}}},
		{"ec-p256-sec1.pem", []wantKey{{desc: "P-256", alg: "ECDH-ES+A256KW"}}},
		{"ec-p384-pkcs8.pem", []wantKey{{desc: "P-384", alg: "ECDH-ES+A256KW"}}},
		{"ec-p256.jwk", []wantKey{{desc: "P-256", alg: "ECDH-ES+A256KW"}}},
		{"set.jwks", []wantKey{
			{desc: "RSA-2048", kid: "hr-2026", alg: "RSA-OAEP"},
			{desc: "P-384", alg: "ECDH-ES+A256KW"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			keys := loadKeys(t, tt.file)
			if len(keys) != len(tt.want) {
				t.Fatalf("got %d keys, want %d", len(keys), len(tt.want))
			}
			for i, w := range tt.want {
				checkKey(t, keys[i].Public(), keys[i].KeyID(), keys[i].Algorithm(), w)
			}
		})
	}
}

func TestParsePublicKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file    string
		private string // the file with the matching private keys
		want    []wantKey
	}{
		{"rsa2048-pkcs1.spki.pem", "rsa2048-pkcs1.pem", []wantKey{{desc: "RSA-2048", alg: "RSA-OAEP-256"}}},
		{"rsa2048-pkcs8.pkcs1.pem", "rsa2048-pkcs8.pem", []wantKey{{desc: "RSA-2048", alg: "RSA-OAEP-256"}}},
		{"ec-p256-sec1.crt", "ec-p256-sec1.pem", []wantKey{{desc: "P-256", alg: "ECDH-ES+A256KW"}}},
		{"ec-p384-pkcs8.spki.pem", "ec-p384-pkcs8.pem", []wantKey{{desc: "P-384", alg: "ECDH-ES+A256KW"}}},
		{"ec-p256.pub.jwk", "ec-p256.jwk", []wantKey{{desc: "P-256", alg: "ECDH-ES+A256KW"}}},
		{"ec-p256.jwk", "ec-p256.jwk", []wantKey{{desc: "P-256", alg: "ECDH-ES+A256KW"}}},
		{"set.pub.jwks", "set.jwks", []wantKey{
			{desc: "RSA-2048", kid: "hr-2026", alg: "RSA-OAEP"},
			{desc: "P-384", alg: "ECDH-ES+A256KW"},
		}},
		{"set.jwks", "set.jwks", []wantKey{
			{desc: "RSA-2048", kid: "hr-2026", alg: "RSA-OAEP"},
			{desc: "P-384", alg: "ECDH-ES+A256KW"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			pubs, err := ParsePublicKeys(readFixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(pubs) != len(tt.want) {
				t.Fatalf("got %d keys, want %d", len(pubs), len(tt.want))
			}
			privs := loadKeys(t, tt.private)
			for i, w := range tt.want {
				checkKey(t, pubs[i].Key, pubs[i].KeyID, pubs[i].Algorithm, w)
				// The CLI and the webhook must agree on the key and its kid.
				if !privs[i].Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(pubs[i].Key) {
					t.Errorf("key %d differs from the public half of %s", i, tt.private)
				}
				if pubs[i].KeyID != privs[i].KeyID() {
					t.Errorf("key %d: kid %q, the private key's %q", i, pubs[i].KeyID, privs[i].KeyID())
				}
			}
		})
	}
}

func checkKey(t *testing.T, pub crypto.PublicKey, kid, alg string, w wantKey) {
	t.Helper()
	if got := describe(pub); got != w.desc {
		t.Errorf("key is %s, want %s", got, w.desc)
	}
	wantKid := w.kid
	if wantKid == "" {
		wantKid = thumbprint(t, pub)
	}
	if kid != wantKid {
		t.Errorf("kid = %q, want %q", kid, wantKid)
	}
	if alg != w.alg {
		t.Errorf("algorithm = %q, want %q", alg, w.alg)
	}
}

func describe(pub crypto.PublicKey) string {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA-%d", p.N.BitLen())
	case *ecdsa.PublicKey:
		return p.Curve.Params().Name
	}
	return fmt.Sprintf("%T", pub)
}

// thumbprint computes the RFC 7638 thumbprint with go-jose, independently of
// KeyID.
func thumbprint(t *testing.T, pub crypto.PublicKey) string {
	t.Helper()
	jwk := jose.JSONWebKey{Key: pub}
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(sum)
}

func TestKeyID(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"rsa2048-pkcs1.pem", "ec-p256-sec1.pem", "ec-p384-pkcs8.pem", "reject-ec-p521-sec1.pem"} {
		pub := pemPublicKey(t, file)
		got, err := KeyID(pub)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if want := thumbprint(t, pub); got != want {
			t.Errorf("%s: KeyID = %q, want %q", file, got, want)
		}
	}
	p224 := genEC(t, elliptic.P224())
	for _, pub := range []crypto.PublicKey{pemPublicKey(t, "reject-ed25519-pkcs8.pem"), &p224.PublicKey, &rsa.PublicKey{}, nil} {
		if kid, err := KeyID(pub); err == nil {
			t.Errorf("KeyID(%T) = %q, want an error", pub, kid)
		}
	}
}

func TestParseSeveralPEMBlocks(t *testing.T) {
	t.Parallel()
	// As openssl writes them: text before a block, "EC PARAMETERS" before an
	// EC key.
	data := slices.Concat(
		[]byte("Bag Attributes\n    localKeyID: 01\n"),
		readFixture(t, "rsa2048-pkcs1.pem"),
		pemBlock("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}),
		readFixture(t, "ec-p256-sec1.pem"),
	)
	keys, err := ParsePrivateKeys(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{loadKeys(t, "rsa2048-pkcs1.pem")[0].KeyID(), loadKeys(t, "ec-p256-sec1.pem")[0].KeyID()}
	if len(keys) != len(want) {
		t.Fatalf("got %d keys, want %d", len(keys), len(want))
	}
	for i := range want {
		if keys[i].KeyID() != want[i] {
			t.Errorf("key %d: kid %q, want %q", i, keys[i].KeyID(), want[i])
		}
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	rsaPriv := readFixture(t, "rsa2048-pkcs1.pem")
	rsaPub := pemPublicKey(t, "rsa2048-pkcs1.pem")
	ecPub := pemPublicKey(t, "ec-p256-sec1.pem")
	tests := []struct {
		name    string
		data    []byte
		public  bool // parse with ParsePublicKeys
		wantErr string
	}{
		{"RSA-1024", readFixture(t, "reject-rsa1024.pem"), false, "RSA key of 1024 bits is too small"},
		{"RSA-1024 public", spkiPEM(t, pemPublicKey(t, "reject-rsa1024.pem")), true, "RSA key of 1024 bits is too small"},
		{"P-521", readFixture(t, "reject-ec-p521-sec1.pem"), false, "EC curve P-521 is not supported"},
		{"P-521 public", spkiPEM(t, pemPublicKey(t, "reject-ec-p521-sec1.pem")), true, "EC curve P-521 is not supported"},
		{"Ed25519", readFixture(t, "reject-ed25519-pkcs8.pem"), false, "unsupported key type ed25519.PrivateKey"},
		{"Ed25519 public", spkiPEM(t, pemPublicKey(t, "reject-ed25519-pkcs8.pem")), true, "unsupported key type ed25519.PublicKey"},
		{"public key as private", readFixture(t, "rsa2048-pkcs1.spki.pem"), false, `PEM block 1 ("PUBLIC KEY"): holds a public key`},
		{"certificate as private", readFixture(t, "ec-p256-sec1.crt"), false, "holds a public key"},
		{"public JWK as private", readFixture(t, "ec-p256.pub.jwk"), false, "JWK: holds a public key"},
		{"private PEM as public", rsaPriv, true, "holds a private key"},
		{"empty", nil, false, "found no PEM key block and no JWK"},
		{"text", []byte("not a key"), true, "found no PEM key block and no JWK"},
		{"unknown PEM type", pemBlock("OPENSSH PRIVATE KEY", []byte{1}), false, "unsupported PEM block type"},
		{"encrypted PKCS#8", pemBlock("ENCRYPTED PRIVATE KEY", []byte{1}), false, "encrypted keys are not supported"},
		{"encrypted PEM", bytes.Replace(rsaPriv, []byte("KEY-----\n"), []byte("KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00000000000000000000000000000000\n\n"), 1), false, "encrypted keys are not supported"},
		{"bad DER", pemBlock("RSA PRIVATE KEY", []byte{0x30, 0x03, 0x02, 0x01}), false, `PEM block 1 ("RSA PRIVATE KEY"): `},
		{"second block bad", slices.Concat(rsaPriv, readFixture(t, "reject-rsa1024.pem")), false, `PEM block 2 ("RSA PRIVATE KEY"): RSA key of 1024 bits`},
		{"bad JSON", []byte(`{"kty":`), false, "JSON:"},
		{"empty JWK Set", []byte(`{"keys":[]}`), false, "JWK Set has no keys"},
		{"second JWK bad", []byte(`{"keys":[` + string(readFixture(t, "ec-p256.jwk")) + `,{"kty":"EC"}]}`), false, "JWK 2 in set:"},
		{"symmetric JWK", []byte(`{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAA"}`), true, "unsupported key type []uint8"},
		{"signing JWK", marshalJSON(t, jose.JSONWebKey{Key: ecPub, Use: "sig"}), true, `JWK: "use" is "sig"`},
		{"RSA JWK with RSA1_5", marshalJSON(t, jose.JSONWebKey{Key: rsaPub, Algorithm: "RSA1_5"}), true, `JWK: "alg" "RSA1_5" does not fit the key`},
		{"EC JWK with RSA-OAEP", marshalJSON(t, jose.JSONWebKey{Key: ecPub, Algorithm: "RSA-OAEP"}), true, `JWK: "alg" "RSA-OAEP" does not fit the key`},
		{"EC JWK with foreign d", ecJWKWithForeignD(t), false, "invalid EC private key: public point does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var err error
			if tt.public {
				_, err = ParsePublicKeys(tt.data)
			} else {
				_, err = ParsePrivateKeys(tt.data)
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
			}
			if e := testkit.Echo(err.Error(), tt.data, testkit.MinEcho); e != "" {
				t.Fatalf("error %q contains %q from the key file", err, e)
			}
		})
	}
}

// ecJWKWithForeignD is ec-p256.jwk with the "d" of another P-256 key.
func ecJWKWithForeignD(t *testing.T) []byte {
	t.Helper()
	var jwk map[string]any
	if err := json.Unmarshal(readFixture(t, "ec-p256.jwk"), &jwk); err != nil {
		t.Fatal(err)
	}
	d, err := genEC(t, elliptic.P256()).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	jwk["d"] = base64.RawURLEncoding.EncodeToString(d)
	return marshalJSON(t, jwk)
}

func TestLoadFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	big := filepath.Join(dir, "big.pem")
	if err := os.WriteFile(big, bytes.Repeat([]byte("\n"), maxKeyFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")

	tests := []struct {
		path    string
		wantErr string
		wantIs  error
	}{
		{big, fmt.Sprintf("key file %q: larger than the 1 MiB limit", big), nil},
		{junk, fmt.Sprintf("key file %q: found no PEM key block", junk), nil},
		{missing, fmt.Sprintf("key file %q: open: ", missing), fs.ErrNotExist},
		{dir, fmt.Sprintf("key file %q: read: ", dir), nil},
	}
	for _, tt := range tests {
		_, errPrivate := LoadFile(tt.path)
		_, errPublic := LoadPublicFile(tt.path)
		for _, err := range []error{errPrivate, errPublic} {
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("%s: got error %v, want one starting with %q", tt.path, err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("%s: error %v does not wrap %v", tt.path, err, tt.wantIs)
			}
		}
	}

	pubs, err := LoadPublicFile(filepath.Join("testdata", "set.pub.jwks"))
	if err != nil || len(pubs) != 2 {
		t.Errorf("LoadPublicFile: got %d keys, %v; want 2 keys", len(pubs), err)
	}
}

func FuzzParseKeys(f *testing.F) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join("testdata", e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	// An error may be logged or printed: it must not carry key material, so
	// it holds no line and no dot-separated part of the input. Fragments
	// shorter than 16 bytes are not looked for: a fuzzed line may by chance
	// be a word of a fixed message ("unsupported").
	noEcho := func(t *testing.T, op string, err error, data []byte) {
		t.Helper()
		if err == nil {
			return
		}
		if e := testkit.Echo(err.Error(), data, 2*testkit.MinEcho); e != "" {
			t.Fatalf("%s error contains %q from the input: %v", op, e, err)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := ParsePrivateKeys(data)
		noEcho(t, "ParsePrivateKeys", err, data)
		for _, k := range keys {
			if err != nil || k.KeyID() == "" || k.Algorithm() == "" {
				t.Fatalf("ParsePrivateKeys returned key %q (%s) and error %v", k.KeyID(), k.Algorithm(), err)
			}
		}
		pubs, err := ParsePublicKeys(data)
		noEcho(t, "ParsePublicKeys", err, data)
		for _, p := range pubs {
			if err != nil || p.KeyID == "" || p.Algorithm == "" {
				t.Fatalf("ParsePublicKeys returned key %q (%s) and error %v", p.KeyID, p.Algorithm, err)
			}
		}
	})
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func loadKeys(t *testing.T, name string) []*Key {
	t.Helper()
	keys, err := LoadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// pemPublicKey returns the public half of the first key in a PEM fixture,
// without the size and curve rules, so that rejected keys can be used too.
func pemPublicKey(t *testing.T, name string) crypto.PublicKey {
	t.Helper()
	block, _ := pem.Decode(readFixture(t, name))
	if block == nil {
		t.Fatalf("%s: no PEM block", name)
	}
	key, err := parsePEMBlock(block)
	if err != nil {
		t.Fatal(err)
	}
	if priv, ok := key.(privateKey); ok {
		return priv.Public()
	}
	return key
}

func spkiPEM(t *testing.T, pub crypto.PublicKey) []byte {
	t.Helper()
	return pemBlock("PUBLIC KEY", marshalSPKI(t, pub))
}
