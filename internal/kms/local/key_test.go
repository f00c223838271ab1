package local

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"maps"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	josecipher "github.com/go-jose/go-jose/v4/cipher"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms"
)

// opaque feeds go-jose's decryption of a JWE through a kms.Decrypter, as
// internal/jwe does.
type opaque struct {
	ctx context.Context
	d   kms.Decrypter
}

func (o opaque) DecryptKey(encryptedKey []byte, h jose.Header) ([]byte, error) {
	return o.d.Unwrap(o.ctx, recipientOf(encryptedKey, h))
}

// capture records the recipient a key service would be handed.
type capture struct{ w *jwe.Recipient }

func (c capture) DecryptKey(encryptedKey []byte, h jose.Header) ([]byte, error) {
	*c.w = recipientOf(encryptedKey, h)
	return nil, errors.New("captured")
}

// recipientOf is the recipient internal/jwe makes of the header go-jose
// parsed.
func recipientOf(encryptedKey []byte, h jose.Header) jwe.Recipient {
	return jwe.Recipient{
		KeyID: h.KeyID, Algorithm: h.Algorithm, EncryptedKey: encryptedKey,
		EphemeralKey: rawJSON(h.ExtraHeaders["epk"]),
		PartyUInfo:   rawJSON(h.ExtraHeaders["apu"]),
		PartyVInfo:   rawJSON(h.ExtraHeaders["apv"]),
	}
}

// rawJSON is v as JSON, nil for nil.
func rawJSON(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func encryptJWE(t *testing.T, k *Key, alg string, plaintext []byte) *jose.JSONWebEncryption {
	t.Helper()
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.KeyAlgorithm(alg), Key: k.Public(), KeyID: k.KeyID()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := enc.Encrypt(plaintext)
	if err != nil {
		t.Fatal(err)
	}
	compact, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := jose.ParseEncrypted(compact,
		[]jose.KeyAlgorithm{jose.RSA_OAEP_256, jose.RSA_OAEP, jose.ECDH_ES_A256KW},
		[]jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		t.Fatal(err)
	}
	return parsed
}

// wrappedKey returns the recipient of a fresh JWE to k as a key service sees it.
func wrappedKey(t *testing.T, k *Key, alg string) jwe.Recipient {
	t.Helper()
	var w jwe.Recipient
	if _, err := encryptJWE(t, k, alg, []byte("x")).Decrypt(capture{&w}); err == nil {
		t.Fatal("capture did not capture")
	}
	return w
}

func TestUnwrapJWERoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		key  int
		alg  string
	}{
		{"rsa2048-pkcs1.pem", 0, "RSA-OAEP-256"},
		{"rsa2048-pkcs1.pem", 0, "RSA-OAEP"},
		{"rsa2048-pkcs8.pem", 0, "RSA-OAEP-256"},
		{"set.jwks", 0, "RSA-OAEP"},
		{"ec-p256-sec1.pem", 0, "ECDH-ES+A256KW"},
		{"ec-p384-pkcs8.pem", 0, "ECDH-ES+A256KW"},
		{"ec-p256.jwk", 0, "ECDH-ES+A256KW"},
		{"set.jwks", 1, "ECDH-ES+A256KW"},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.alg, func(t *testing.T) {
			t.Parallel()
			k := loadKeys(t, tt.file)[tt.key]
			want := []byte("hunter2")
			got, err := encryptJWE(t, k, tt.alg, want).Decrypt(opaque{t.Context(), k})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("decrypted %q, want %q", got, want)
			}
		})
	}
}

func TestUnwrapRSAOAEP(t *testing.T) {
	t.Parallel()
	k := loadKeys(t, "rsa2048-pkcs1.pem")[0]
	for _, tt := range []struct {
		alg  string
		hash func() hash.Hash
	}{
		{"RSA-OAEP-256", sha256.New},
		{"RSA-OAEP", sha1.New},
	} {
		cek := randomBytes(t, 32)
		ek, err := rsa.EncryptOAEP(tt.hash(), rand.Reader, k.Public().(*rsa.PublicKey), cek, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := k.Unwrap(t.Context(), jwe.Recipient{Algorithm: tt.alg, EncryptedKey: ek})
		if err != nil {
			t.Fatalf("%s: %v", tt.alg, err)
		}
		if !bytes.Equal(got, cek) {
			t.Errorf("%s: unwrapped a different key", tt.alg)
		}
	}
}

// TestUnwrapECDHPartyInfo checks that "apu" and "apv" enter the key
// derivation; go-jose's encrypter sets neither.
func TestUnwrapECDHPartyInfo(t *testing.T) {
	t.Parallel()
	k := loadKeys(t, "ec-p256-sec1.pem")[0]
	w, cek := wrapECDH(t, k, []byte("Alice"), []byte("Bob"))
	got, err := k.Unwrap(t.Context(), w)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, cek) {
		t.Error("unwrapped a different key")
	}
	w = withHeader(w, "apv", base64.RawURLEncoding.EncodeToString([]byte("Eve")))
	if _, err := k.Unwrap(t.Context(), w); !errors.Is(err, jwe.ErrKeyMismatch) {
		t.Errorf("with another apv: got error %v, want a mismatch", err)
	}
}

// wrapECDH wraps a random CEK to k with ECDH-ES+A256KW and the given party
// info, and returns it with the header a parsed JWE would carry.
func wrapECDH(t *testing.T, k *Key, apu, apv []byte) (jwe.Recipient, []byte) {
	t.Helper()
	pub := k.Public().(*ecdsa.PublicKey)
	eph := genEC(t, pub.Curve)
	kek := josecipher.DeriveECDHES("ECDH-ES+A256KW", apu, apv, eph, pub, 32)
	block, err := aes.NewCipher(kek)
	if err != nil {
		t.Fatal(err)
	}
	cek := randomBytes(t, 32)
	ek, err := josecipher.KeyWrap(block, cek)
	if err != nil {
		t.Fatal(err)
	}
	var epk any
	if err := json.Unmarshal(marshalJSON(t, jose.JSONWebKey{Key: &eph.PublicKey}), &epk); err != nil {
		t.Fatal(err)
	}
	return jwe.Recipient{
		Algorithm:    "ECDH-ES+A256KW",
		EncryptedKey: ek,
		EphemeralKey: rawJSON(epk),
		PartyUInfo:   rawJSON(base64.RawURLEncoding.EncodeToString(apu)),
		PartyVInfo:   rawJSON(base64.RawURLEncoding.EncodeToString(apv)),
	}, cek
}

func TestUnwrapMismatch(t *testing.T) {
	t.Parallel()
	rsaA := loadKeys(t, "rsa2048-pkcs1.pem")[0]
	rsaB := loadKeys(t, "rsa2048-pkcs8.pem")[0]
	ecC := loadKeys(t, "ec-p256-sec1.pem")[0]
	ecE := loadKeys(t, "ec-p256.jwk")[0]
	toRSA := wrappedKey(t, rsaA, "RSA-OAEP-256")
	toEC := wrappedKey(t, ecC, "ECDH-ES+A256KW")

	tests := []struct {
		name string
		key  *Key
		w    jwe.Recipient
	}{
		{"RSA other key", rsaB, toRSA},
		{"RSA tampered", rsaA, tamper(toRSA)},
		{"RSA other hash", rsaA, withAlg(toRSA, "RSA-OAEP")},
		{"RSA empty", rsaA, jwe.Recipient{Algorithm: "RSA-OAEP-256"}},
		{"ECDH other key", ecE, toEC},
		{"ECDH tampered", ecC, tamper(toEC)},
		{"ECDH truncated", ecC, withEncryptedKey(toEC, toEC.EncryptedKey[:8])},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cek, err := tt.key.Unwrap(t.Context(), tt.w)
			if !errors.Is(err, jwe.ErrKeyMismatch) {
				t.Fatalf("got %x, %v; want a mismatch", cek, err)
			}
			if !strings.HasPrefix(err.Error(), tt.w.Algorithm+": ") {
				t.Errorf("error %q does not name the algorithm", err)
			}
			assertNoSecrets(t, err, tt.key, tt.w.EncryptedKey)
		})
	}
}

func TestUnwrapErrors(t *testing.T) {
	t.Parallel()
	rsaKey := loadKeys(t, "rsa2048-pkcs1.pem")[0]
	ecKey := loadKeys(t, "ec-p256-sec1.pem")[0]
	toEC := wrappedKey(t, ecKey, "ECDH-ES+A256KW")
	// An epk on P-384: a valid point, but on another curve.
	onP384 := wrappedKey(t, loadKeys(t, "ec-p384-pkcs8.pem")[0], "ECDH-ES+A256KW")
	var epk map[string]any
	if err := json.Unmarshal(toEC.EphemeralKey, &epk); err != nil {
		t.Fatal(err)
	}
	offCurve := maps.Clone(epk)
	offCurve["x"], offCurve["y"] = epk["y"], epk["x"]

	tests := []struct {
		name    string
		key     *Key
		w       jwe.Recipient
		wantErr string
	}{
		{"RSA1_5", rsaKey, withAlg(toEC, "RSA1_5"), `unsupported algorithm "RSA1_5"`},
		{"dir", ecKey, withAlg(toEC, "dir"), `unsupported algorithm "dir"`},
		{"A256KW", ecKey, withAlg(toEC, "A256KW"), `unsupported algorithm "A256KW"`},
		{"ECDH-ES direct", ecKey, withAlg(toEC, "ECDH-ES"), `unsupported algorithm "ECDH-ES"`},
		{"no alg", ecKey, withAlg(toEC, ""), `unsupported algorithm ""`},
		{"ECDH to RSA key", rsaKey, toEC, `algorithm "ECDH-ES+A256KW" does not fit an RSA key`},
		{"RSA-OAEP-256 to EC key", ecKey, withAlg(toEC, "RSA-OAEP-256"), `algorithm "RSA-OAEP-256" does not fit an EC key`},
		{"no epk", ecKey, withHeader(toEC, "epk", nil), `ECDH-ES+A256KW: header has no "epk"`},
		{"epk on another curve", ecKey, withHeader(toEC, "epk", onP384.EphemeralKey), `"epk" is on P-384, the key on P-256`},
		{"epk off the curve", ecKey, withHeader(toEC, "epk", offCurve), `header "epk": `},
		{"epk private", ecKey, withHeader(toEC, "epk", jose.JSONWebKey{Key: genEC(t, ecKey.ec.Curve)}), `header "epk" is *ecdsa.PrivateKey, not an EC public key`},
		{"epk RSA", ecKey, withHeader(toEC, "epk", jose.JSONWebKey{Key: rsaKey.Public()}), `header "epk" is *rsa.PublicKey`},
		{"epk a string", ecKey, withHeader(toEC, "epk", "AAAA"), `header "epk": `},
		{"apu a number", ecKey, withHeader(toEC, "apu", 7.0), `header "apu" is not a string`},
		{"apv bad base64", ecKey, withHeader(toEC, "apv", "a+b="), `header "apv": illegal base64`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tt.key.Unwrap(t.Context(), tt.w)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
			}
			if errors.Is(err, jwe.ErrKeyMismatch) {
				t.Errorf("error %q is a mismatch; want a fatal error", err)
			}
			assertNoSecrets(t, err, tt.key, tt.w.EncryptedKey)
		})
	}
}

func TestUnwrapEPKAsJSONWebKey(t *testing.T) {
	t.Parallel()
	k := loadKeys(t, "ec-p384-pkcs8.pem")[0]
	w, cek := wrapECDH(t, k, nil, nil)
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(w.EphemeralKey); err != nil {
		t.Fatal(err)
	}
	for _, epk := range []any{jwk, &jwk} {
		got, err := k.Unwrap(t.Context(), withHeader(w, "epk", epk))
		if err != nil {
			t.Fatalf("epk as %T: %v", epk, err)
		}
		if !bytes.Equal(got, cek) {
			t.Errorf("epk as %T: unwrapped a different key", epk)
		}
	}
}

func TestUnwrapCanceled(t *testing.T) {
	t.Parallel()
	k := loadKeys(t, "rsa2048-pkcs1.pem")[0]
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := k.Unwrap(ctx, wrappedKey(t, k, "RSA-OAEP-256")); !errors.Is(err, context.Canceled) {
		t.Errorf("got error %v, want context.Canceled", err)
	}
}

func TestKeyringWithLocalKeys(t *testing.T) {
	t.Parallel()
	rsaKey := loadKeys(t, "rsa2048-pkcs1.pem")[0]
	ecKey := loadKeys(t, "ec-p256-sec1.pem")[0]
	ring, err := kms.NewKeyring(kms.Options{},
		kms.Entry{Decrypter: rsaKey, Provider: "local", Namespaces: []string{"hr-*"}},
		kms.Entry{Decrypter: ecKey, Provider: "local"},
	)
	if err != nil {
		t.Fatal(err)
	}
	cek := randomBytes(t, 32)
	ek, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, rsaKey.Public().(*rsa.PublicKey), cek, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := jwe.Recipient{KeyID: rsaKey.KeyID(), Algorithm: "RSA-OAEP-256", EncryptedKey: ek}
	got, err := ring.Unwrap(t.Context(), "hr-payroll", w)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, cek) {
		t.Error("unwrapped a different key")
	}

	if _, err := ring.Unwrap(t.Context(), "default", w); !errors.Is(err, kms.ErrNamespaceNotAllowed) {
		t.Errorf("in namespace default: got error %v, want ErrNamespaceNotAllowed", err)
	}

	// The EC key's kid on an RSA-wrapped key: the key does not fit the algorithm.
	_, err = ring.Unwrap(t.Context(), "hr-payroll", jwe.Recipient{KeyID: ecKey.KeyID(), Algorithm: "RSA-OAEP-256", EncryptedKey: ek})
	if err == nil || errors.Is(err, jwe.ErrKeyMismatch) {
		t.Errorf("EC key for RSA-OAEP-256: got error %v, want a fatal error", err)
	}

	tampered := tamper(w)
	_, err = ring.Unwrap(t.Context(), "hr-payroll", tampered)
	want := `unwrap with key "` + rsaKey.KeyID() + `" (local): RSA-OAEP-256: key does not match`
	if !errors.Is(err, jwe.ErrKeyMismatch) || err.Error() != want {
		t.Errorf("tampered: got error %v, want %q", err, want)
	}
	assertNoSecrets(t, err, rsaKey, cek, tampered.EncryptedKey)
}

func tamper(w jwe.Recipient) jwe.Recipient {
	ek := bytes.Clone(w.EncryptedKey)
	ek[len(ek)/2] ^= 1
	return withEncryptedKey(w, ek)
}

func withEncryptedKey(w jwe.Recipient, ek []byte) jwe.Recipient {
	w.EncryptedKey = ek
	return w
}

func withAlg(w jwe.Recipient, alg string) jwe.Recipient {
	w.Algorithm = alg
	return w
}

// withHeader returns w with header name ("epk", "apu" or "apv") set to v, or
// removed when v is nil.
func withHeader(w jwe.Recipient, name string, v any) jwe.Recipient {
	field := map[string]*json.RawMessage{"epk": &w.EphemeralKey, "apu": &w.PartyUInfo, "apv": &w.PartyVInfo}[name]
	*field = rawJSON(v)
	return w
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// assertNoSecrets fails if err shows any of the private key of k or the other
// secrets, raw or in hex or base64, in whole or by their first 12 bytes.
func assertNoSecrets(t *testing.T, err error, k *Key, secrets ...[]byte) {
	t.Helper()
	if k.rsa != nil {
		secrets = append(secrets, k.rsa.D.Bytes())
		for _, p := range k.rsa.Primes {
			secrets = append(secrets, p.Bytes())
		}
	} else {
		d, err := k.ec.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, d)
	}
	msg := err.Error()
	for _, s := range secrets {
		if len(s) < 12 {
			continue
		}
		for _, enc := range []string{
			string(s[:12]),
			hex.EncodeToString(s[:12]),
			base64.StdEncoding.EncodeToString(s[:12]),
			base64.URLEncoding.EncodeToString(s[:12]),
		} {
			if strings.Contains(msg, enc) {
				t.Errorf("error %q shows secret bytes", msg)
			}
		}
	}
}
