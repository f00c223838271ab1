package gcpkms_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"hash"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/gcpkms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/gcpkms/gcpkmstest"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/kmstest"
)

const (
	ring   = "projects/p/locations/global/keyRings/r/cryptoKeys/"
	hr     = ring + "hr" // versions 1 and 2, RSA_DECRYPT_OAEP_2048_SHA256
	hr1    = hr + "/cryptoKeyVersions/1"
	hr2    = hr + "/cryptoKeyVersions/2"
	legacy = ring + "legacy/cryptoKeyVersions/1" // RSA_DECRYPT_OAEP_2048_SHA1
	other  = ring + "other/cryptoKeyVersions/1"  // RSA_DECRYPT_OAEP_2048_SHA256, another key
	sign   = ring + "sign/cryptoKeyVersions/1"   // RSA_SIGN_PSS_2048_SHA256
	big    = ring + "big/cryptoKeyVersions/1"    // RSA_DECRYPT_OAEP_4096_SHA256
	sha512 = ring + "sha512/cryptoKeyVersions/1" // RSA_DECRYPT_OAEP_4096_SHA512
)

// rsaKeys returns two RSA-2048 keys, generated once for the package's tests.
func rsaKeys(t testing.TB) [2]*rsa.PrivateKey {
	return [2]*rsa.PrivateKey{kmstest.RSAKey(t, 0), kmstest.RSAKey(t, 1)}
}

// rsa4096 is a test-only key checked in because generating one takes seconds
// (openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:4096).
var rsa4096 = sync.OnceValues(func() (*rsa.PrivateKey, error) {
	b, err := os.ReadFile("testdata/rsa4096.pem")
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("testdata/rsa4096.pem: no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	return k.(*rsa.PrivateKey), nil
})

// env is a fake Cloud KMS with the versions above and a client connected to
// it over loopback TCP.
type env struct {
	srv    *gcpkmstest.Server
	client *gcpkms.Client
	priv   map[string]*rsa.PrivateKey // by version name
}

func newEnv(t testing.TB) *env {
	t.Helper()
	keys := rsaKeys(t)
	key4096, err := rsa4096()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{srv: gcpkmstest.Start(t), priv: make(map[string]*rsa.PrivateKey)}
	for _, v := range []struct {
		name string
		alg  kmspb.CryptoKeyVersion_CryptoKeyVersionAlgorithm
		key  *rsa.PrivateKey
	}{
		{hr1, kmspb.CryptoKeyVersion_RSA_DECRYPT_OAEP_2048_SHA256, keys[0]},
		{hr2, kmspb.CryptoKeyVersion_RSA_DECRYPT_OAEP_2048_SHA256, keys[1]},
		{legacy, kmspb.CryptoKeyVersion_RSA_DECRYPT_OAEP_2048_SHA1, keys[0]},
		{other, kmspb.CryptoKeyVersion_RSA_DECRYPT_OAEP_2048_SHA256, keys[1]},
		{sign, kmspb.CryptoKeyVersion_RSA_SIGN_PSS_2048_SHA256, keys[0]},
		{big, kmspb.CryptoKeyVersion_RSA_DECRYPT_OAEP_4096_SHA256, key4096},
		{sha512, kmspb.CryptoKeyVersion_RSA_DECRYPT_OAEP_4096_SHA512, key4096},
	} {
		if err := e.srv.AddVersion(v.name, v.alg, v.key); err != nil {
			t.Fatal(err)
		}
		e.priv[v.name] = v.key
	}
	e.client, err = gcpkms.NewClient(t.Context(), e.srv.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.client.Close(); err != nil {
			t.Error(err)
		}
	})
	return e
}

func (e *env) key(t testing.TB, name string) *gcpkms.Key {
	t.Helper()
	k, err := e.client.Key(name)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// wrap encrypts a fresh 32-byte CEK to the public key of version to under
// alg, and labels it kid.
func (e *env) wrap(t testing.TB, to, kid, alg string) (cek []byte, w jwe.Recipient) {
	t.Helper()
	var h hash.Hash
	switch alg {
	case "RSA-OAEP-256":
		h = sha256.New()
	case "RSA-OAEP":
		h = sha1.New()
	default:
		t.Fatalf("wrap: algorithm %q", alg)
	}
	cek = make([]byte, 32)
	rand.Read(cek)
	ek, err := rsa.EncryptOAEP(h, rand.Reader, &e.priv[to].PublicKey, cek, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cek, jwe.Recipient{KeyID: kid, Algorithm: alg, EncryptedKey: ek}
}

// assertQuiet fails when err's text shows any of the secrets, raw or encoded.
func assertQuiet(t *testing.T, err error, secrets ...[]byte) {
	t.Helper()
	msg := err.Error()
	for _, s := range secrets {
		for _, enc := range []string{string(s), hex.EncodeToString(s), base64.StdEncoding.EncodeToString(s), base64.RawURLEncoding.EncodeToString(s)} {
			if strings.Contains(msg, enc) {
				t.Fatalf("error shows a secret: %v", err)
			}
		}
	}
}

func TestUnwrap(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		name, key, version, alg string
	}{
		{"RSA-OAEP-256 version", hr1, hr1, "RSA-OAEP-256"},
		{"RSA-OAEP version", legacy, legacy, "RSA-OAEP"},
		{"RSA-4096 version", big, big, "RSA-OAEP-256"},
		{"crypto key, version 1", hr, hr1, "RSA-OAEP-256"},
		{"crypto key, version 2", hr, hr2, "RSA-OAEP-256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cek, w := e.wrap(t, tc.version, tc.version, tc.alg)
			got, err := e.key(t, tc.key).Unwrap(t.Context(), w)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, cek) {
				t.Fatal("unwrapped a different CEK")
			}
		})
	}
}

func TestUnwrapMismatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		name, key, kid string
	}{
		{"another key's version", hr, other},
		{"another version", hr1, hr2},
		{"the crypto key itself", hr, hr},
		{"a crypto key sharing a prefix", hr, ring + "hr2/cryptoKeyVersions/1"},
		{"a version with a leading zero", hr, hr + "/cryptoKeyVersions/01"},
		{"no kid", hr1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, w := e.wrap(t, hr1, tc.kid, "RSA-OAEP-256")
			_, err := e.key(t, tc.key).Unwrap(t.Context(), w)
			if !errors.Is(err, jwe.ErrKeyMismatch) {
				t.Fatalf("err = %v, want ErrKeyMismatch", err)
			}
		})
	}
	if c := e.srv.Calls(); c != (gcpkmstest.Calls{}) {
		t.Errorf("calls = %+v, want none", c)
	}
}

func TestUnwrapWrongCiphertext(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cek, w := e.wrap(t, other, hr1, "RSA-OAEP-256") // encrypted to another key, labelled hr1
	_, err := e.key(t, hr).Unwrap(t.Context(), w)
	if !errors.Is(err, jwe.ErrKeyMismatch) || status.Code(err) != codes.InvalidArgument {
		t.Fatalf("err = %v, want ErrKeyMismatch from InvalidArgument", err)
	}
	assertQuiet(t, err, cek, w.EncryptedKey)
}

// TestUnwrapVersionNotFound: a kid naming a version the crypto key does not
// have is refused as Cloud KMS's NotFound, wrapping kms.ErrKeyNotFound so the
// keyring's negative cache can remember it.
func TestUnwrapVersionNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, w := e.wrap(t, hr1, hr+"/cryptoKeyVersions/99", "RSA-OAEP-256")
	_, err := e.key(t, hr).Unwrap(t.Context(), w)
	if !errors.Is(err, kms.ErrKeyNotFound) || status.Code(err) != codes.NotFound {
		t.Fatalf("err = %v, want ErrKeyNotFound from NotFound", err)
	}
	_, w = e.wrap(t, hr1, hr1, "RSA-OAEP-256")
	e.srv.SetFaults(gcpkmstest.Faults{Code: codes.Unavailable})
	if _, err := e.key(t, hr).Unwrap(t.Context(), w); errors.Is(err, kms.ErrKeyNotFound) {
		t.Fatalf("an unavailable service: %v wraps ErrKeyNotFound", err)
	}
}

// TestUnwrapAlgorithm checks that a version whose algorithm does not decrypt
// the JWE's alg is a configuration error found before any decrypt call.
func TestUnwrapAlgorithm(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct{ version, alg, want string }{
		{legacy, "RSA-OAEP-256", `has algorithm RSA_DECRYPT_OAEP_2048_SHA1, which does not decrypt "RSA-OAEP-256"`},
		{hr1, "RSA-OAEP", `has algorithm RSA_DECRYPT_OAEP_2048_SHA256, which does not decrypt "RSA-OAEP"`},
		{sign, "RSA-OAEP-256", `has algorithm RSA_SIGN_PSS_2048_SHA256, which does not decrypt "RSA-OAEP-256"`},
		{sha512, "RSA-OAEP-256", `has algorithm RSA_DECRYPT_OAEP_4096_SHA512, which does not decrypt "RSA-OAEP-256"`},
	} {
		t.Run(tc.version+" "+tc.alg, func(t *testing.T) {
			_, w := e.wrap(t, hr1, tc.version, "RSA-OAEP-256")
			w.Algorithm = tc.alg
			_, err := e.key(t, tc.version).Unwrap(t.Context(), w)
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, jwe.ErrKeyMismatch) {
				t.Fatalf("err = %v, want one saying %s", err, tc.want)
			}
		})
	}
	if n := e.srv.Calls().AsymmetricDecrypt; n != 0 {
		t.Errorf("%d AsymmetricDecrypt calls, want none", n)
	}
}

// TestUnwrapService checks what Unwrap says when Cloud KMS refuses, fails or
// answers with a bad checksum.
func TestUnwrapService(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		faults  gcpkmstest.Faults
		disable bool
		primed  bool // the version's public key was fetched before the fault
		want    string
		code    codes.Code // of the error, when it comes from a call
		decrypt int        // AsymmetricDecrypt calls, counting the priming one
	}{
		{name: "permission denied", primed: true, faults: gcpkmstest.Faults{Code: codes.PermissionDenied},
			want: `gcp kms: decrypt with "` + hr1 + `": permission denied`, code: codes.PermissionDenied, decrypt: 2},
		{name: "permission denied on public key", faults: gcpkmstest.Faults{Code: codes.PermissionDenied},
			want: `gcp kms: get public key of "` + hr1 + `": permission denied`, code: codes.PermissionDenied},
		{name: "unauthenticated", primed: true, faults: gcpkmstest.Faults{Code: codes.Unauthenticated},
			want: "unauthenticated", code: codes.Unauthenticated, decrypt: 2},
		{name: "unavailable, retried twice", primed: true, faults: gcpkmstest.Faults{Code: codes.Unavailable},
			want: "unavailable: The service is currently unavailable.", code: codes.Unavailable, decrypt: 4},
		{name: "internal", primed: true, faults: gcpkmstest.Faults{Code: codes.Internal},
			want: "internal: fake cloud kms: injected Internal", code: codes.Internal, decrypt: 2},
		{name: "disabled", primed: true, disable: true,
			want: "failed precondition (is the key version enabled?): " + hr1 + " is not enabled, current state is: DISABLED.", code: codes.FailedPrecondition, decrypt: 2},
		{name: "disabled before its public key was read", disable: true,
			want: `get public key of "` + hr1 + `": failed precondition`, code: codes.FailedPrecondition},
		{name: "ciphertext checksum not verified", primed: true, faults: gcpkmstest.Faults{UnverifiedCiphertext: true},
			want: "did not verify the ciphertext's CRC32C checksum", decrypt: 2},
		{name: "plaintext checksum wrong", primed: true, faults: gcpkmstest.Faults{CorruptPlaintext: true},
			want: "the plaintext does not match its CRC32C checksum", decrypt: 2},
		{name: "public key checksum wrong", faults: gcpkmstest.Faults{CorruptPublicKey: true},
			want: "the PEM does not match its CRC32C checksum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			k := e.key(t, hr)
			if tc.primed {
				_, w := e.wrap(t, hr1, hr1, "RSA-OAEP-256")
				if _, err := k.Unwrap(t.Context(), w); err != nil {
					t.Fatal(err)
				}
			}
			e.srv.SetFaults(tc.faults)
			if tc.disable {
				if err := e.srv.SetState(hr1, kmspb.CryptoKeyVersion_DISABLED); err != nil {
					t.Fatal(err)
				}
			}
			cek, w := e.wrap(t, hr1, hr1, "RSA-OAEP-256")
			_, err := k.Unwrap(t.Context(), w)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
			if errors.Is(err, jwe.ErrKeyMismatch) {
				t.Errorf("err = %v wraps ErrKeyMismatch; the key service failed", err)
			}
			if tc.code != codes.OK && status.Code(err) != tc.code {
				t.Errorf("status code %v, want %v", status.Code(err), tc.code)
			}
			if n := e.srv.Calls().AsymmetricDecrypt; n != tc.decrypt {
				t.Errorf("%d AsymmetricDecrypt calls, want %d", n, tc.decrypt)
			}
			assertQuiet(t, err, cek, w.EncryptedKey)
		})
	}
}

// TestUnwrapDeadline checks that the caller's deadline ends a call that Cloud
// KMS holds.
func TestUnwrapDeadline(t *testing.T) {
	t.Parallel()
	const hold = 10 * time.Second
	for _, primed := range []bool{false, true} {
		name := map[bool]string{false: "get public key", true: "decrypt"}[primed]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			k := e.key(t, hr1)
			_, w := e.wrap(t, hr1, hr1, "RSA-OAEP-256")
			if primed {
				if _, err := k.Unwrap(t.Context(), w); err != nil {
					t.Fatal(err)
				}
			}
			e.srv.SetFaults(gcpkmstest.Faults{Delay: hold})
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := k.Unwrap(ctx, w)
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("err = %v, want context.DeadlineExceeded", err)
				}
				if !strings.Contains(err.Error(), "gcp kms: "+name) || !strings.Contains(err.Error(), "deadline exceeded") {
					t.Errorf("err = %v, want it to name the call and the deadline", err)
				}
			case <-time.After(hold):
				t.Fatal("Unwrap waited for the server's delay, past its context's deadline")
			}
		})
	}
}

// TestPublicKeyCached checks that each version's public key is fetched once
// however many values it unwraps.
func TestPublicKeyCached(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	k := e.key(t, hr)
	for range 10 {
		for _, v := range []string{hr1, hr2} {
			cek, w := e.wrap(t, v, v, "RSA-OAEP-256")
			got, err := k.Unwrap(t.Context(), w)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, cek) {
				t.Fatal("unwrapped a different CEK")
			}
		}
	}
	if got, want := e.srv.Calls(), (gcpkmstest.Calls{GetPublicKey: 2, AsymmetricDecrypt: 20}); got != want {
		t.Errorf("calls = %+v, want %+v", got, want)
	}
}

// TestUnwrapConcurrent runs unwraps in parallel for the race detector.
func TestUnwrapConcurrent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	k := e.key(t, hr)
	const n = 16
	ws := make([]jwe.Recipient, n)
	ceks := make([][]byte, n)
	for i := range ws {
		v := []string{hr1, hr2}[i%2]
		ceks[i], ws[i] = e.wrap(t, v, v, "RSA-OAEP-256")
	}
	var wg sync.WaitGroup
	for i := range ws {
		wg.Go(func() {
			got, err := k.Unwrap(t.Context(), ws[i])
			if err != nil || !bytes.Equal(got, ceks[i]) {
				t.Errorf("unwrap %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if c := e.srv.Calls(); c.GetPublicKey < 2 || c.GetPublicKey > n {
		t.Errorf("%d GetPublicKey calls, want 2 to %d", c.GetPublicKey, n)
	}
}

func TestPublicKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	keys := rsaKeys(t)
	// A crypto key whose newest enabled version is 9: 10 is disabled, and
	// "10" sorts before "9" as a string.
	multi := ring + "multi"
	for _, n := range []string{"1", "2", "9", "10"} {
		key := keys[0]
		if n == "9" {
			key = keys[1]
		}
		if err := e.srv.AddVersion(multi+"/cryptoKeyVersions/"+n, kmspb.CryptoKeyVersion_RSA_DECRYPT_OAEP_2048_SHA256, key); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.srv.SetState(multi+"/cryptoKeyVersions/10", kmspb.CryptoKeyVersion_DISABLED); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, key, kid, alg string
		pub                 *rsa.PublicKey
	}{
		{"version", hr1, hr1, "RSA-OAEP-256", &keys[0].PublicKey},
		{"SHA-1 version", legacy, legacy, "RSA-OAEP", &keys[0].PublicKey},
		{"RSA-4096 version", big, big, "RSA-OAEP-256", &e.priv[big].PublicKey},
		{"crypto key", hr, hr2, "RSA-OAEP-256", &keys[1].PublicKey},
		{"crypto key, newest enabled", multi, multi + "/cryptoKeyVersions/9", "RSA-OAEP-256", &keys[1].PublicKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pk, err := e.key(t, tc.key).PublicKey(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if pk.KeyID != tc.kid || pk.Algorithm != tc.alg {
				t.Errorf("KeyID, Algorithm = %q, %q; want %q, %q", pk.KeyID, pk.Algorithm, tc.kid, tc.alg)
			}
			if pub, ok := pk.Key.(*rsa.PublicKey); !ok || !pub.Equal(tc.pub) {
				t.Errorf("Key = %T, not the version's public key", pk.Key)
			}
		})
	}
	// PublicKeys: every enabled version, by number.
	all, err := e.key(t, multi).PublicKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, pk := range all {
		kids = append(kids, strings.TrimPrefix(pk.KeyID, multi+"/cryptoKeyVersions/"))
	}
	if strings.Join(kids, ",") != "1,2,9" {
		t.Errorf("PublicKeys kids = %q, want versions 1, 2 and 9", kids)
	}
	if one, err := e.key(t, hr1).PublicKeys(t.Context()); err != nil || len(one) != 1 || one[0].KeyID != hr1 {
		t.Errorf("PublicKeys of a version = %v, %v", one, err)
	}
}

func TestPublicKeyRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := e.srv.SetState(hr1, kmspb.CryptoKeyVersion_DISABLED); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.SetState(hr2, kmspb.CryptoKeyVersion_DESTROYED); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ key, want string }{
		{sign, "has algorithm RSA_SIGN_PSS_2048_SHA256, not RSA_DECRYPT_OAEP_*_SHA256 (RSA-OAEP-256) or _SHA1 (RSA-OAEP)"},
		{sha512, "has algorithm RSA_DECRYPT_OAEP_4096_SHA512, not"},
		{hr, `crypto key "` + hr + `" has no enabled version`},
		{hr1, "is not enabled"},
		{ring + "missing", `list versions of "` + ring + `missing": not found`},
	} {
		t.Run(tc.key, func(t *testing.T) {
			_, err := e.key(t, tc.key).PublicKey(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func TestKeyName(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, name := range []string{
		hr, hr1,
		"projects/example.com:p/locations/europe-west1/keyRings/ring_1/cryptoKeys/key-1/cryptoKeyVersions/12",
	} {
		k, err := e.client.Key(name)
		if err != nil {
			t.Errorf("Key(%q): %v", name, err)
			continue
		}
		if k.KeyID() != name {
			t.Errorf("KeyID() = %q, want %q", k.KeyID(), name)
		}
	}
	for _, tc := range []struct{ name, want string }{
		{"", "is not a crypto key (projects/P/locations/L/keyRings/R/cryptoKeys/K) or a key version (projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N)"},
		{"projects/p/keyRings/r/cryptoKeys/k", "is not a crypto key"},
		{"projects/p/locations/l/keyRings/r", "is not a crypto key"},
		{hr + "/", "is not a crypto key"},
		{"/" + hr, "is not a crypto key"},
		{"projects/p/locations/l/keyRings/r/cryptoKey/k", `has "cryptoKey" where "cryptoKeys" belongs`},
		{"projects/p/locations/l/keyRings/r/cryptoKeys/k/versions/1", `has "versions" where "cryptoKeyVersions" belongs`},
		{"projects/p/locations//keyRings/r/cryptoKeys/k", `locations ID "" is empty`},
		{"projects/p/locations/l/keyRings/r r/cryptoKeys/k", `keyRings ID "r r" is empty or has characters`},
		{hr + "/cryptoKeyVersions/0", `key version "0" is not a positive number`},
		{hr + "/cryptoKeyVersions/01", `key version "01" is not a positive number`},
		{hr + "/cryptoKeyVersions/latest", `key version "latest" is not a positive number`},
	} {
		_, err := e.client.Key(tc.name)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Key(%q) = %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}

func TestMatchKeyID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		key, kid string
		want     bool
	}{
		{hr, hr, true},
		{hr, hr1, true},
		{hr, hr + "/cryptoKeyVersions/42", true},
		{hr, hr + "/cryptoKeyVersions/0", false},
		{hr, hr + "/cryptoKeyVersions/1/x", false},
		{hr, ring + "hr2/cryptoKeyVersions/1", false},
		{hr, other, false},
		{hr, "", false},
		{hr1, hr1, true},
		{hr1, hr2, false},
		{hr1, hr, false},
	} {
		if got := e.key(t, tc.key).MatchKeyID(tc.kid); got != tc.want {
			t.Errorf("Key(%q).MatchKeyID(%q) = %v, want %v", tc.key, tc.kid, got, tc.want)
		}
	}
}

// unwrapper feeds internal/jwe's decryption through a kms.Decrypter.
type unwrapper struct{ d kms.Decrypter }

func (u unwrapper) Unwrap(ctx context.Context, r jwe.Recipient) ([]byte, error) {
	return u.d.Unwrap(ctx, r)
}

// TestRoundTrip encrypts to the public key PublicKey returns, as the
// custodian CLI does, and decrypts through Cloud KMS, as the webhook does.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, name := range []string{hr, legacy} {
		t.Run(name, func(t *testing.T) {
			k := e.key(t, name)
			pk, err := k.PublicKey(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			plaintext := []byte("s3cr3t password")
			value, err := jwe.Encrypt(plaintext, jwe.Scope{Namespace: "hr"}, "", jwe.PublicKey(pk))
			if err != nil {
				t.Fatal(err)
			}
			obj, err := jwe.Parse([]byte(value))
			if err != nil {
				t.Fatal(err)
			}
			got, r, err := obj.Decrypt(t.Context(), unwrapper{k})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, plaintext) || r.KeyID != pk.KeyID || r.Algorithm != pk.Algorithm {
				t.Errorf("decrypted %q with %q (%s), want %q with %q (%s)", got, r.KeyID, r.Algorithm, plaintext, pk.KeyID, pk.Algorithm)
			}
		})
	}
}

// BenchmarkUnwrap measures one Unwrap with the version's public key cached:
// one AsymmetricDecrypt over loopback gRPC, RSA-2048 decryption included.
func BenchmarkUnwrap(b *testing.B) {
	e := newEnv(b)
	k := e.key(b, hr)
	_, w := e.wrap(b, hr1, hr1, "RSA-OAEP-256")
	for b.Loop() {
		if _, err := k.Unwrap(b.Context(), w); err != nil {
			b.Fatal(err)
		}
	}
}

// TestUnwrapServiceDeadline checks that Cloud KMS answering DeadlineExceeded
// reads as a timeout to the caller, as its own context ending does.
func TestUnwrapServiceDeadline(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	k := e.key(t, hr)
	_, w := e.wrap(t, hr1, hr1, "RSA-OAEP-256")
	if _, err := k.Unwrap(t.Context(), w); err != nil {
		t.Fatal(err)
	}
	e.srv.SetFaults(gcpkmstest.Faults{Code: codes.DeadlineExceeded})
	_, err := k.Unwrap(t.Context(), w)
	if !errors.Is(err, context.DeadlineExceeded) || status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("err = %v, want one that is context.DeadlineExceeded with status DeadlineExceeded", err)
	}
}
