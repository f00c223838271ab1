// Package kmstest is the case table every remote key service passes: round
// trip, wrong key, permission denied, unavailable, timeout, algorithm
// mismatch and rotation. A provider's tests describe its service (usually an
// in-process fake speaking the real protocol) as a Service and call Run; the
// cases drive it as the webhook does, through a kms.Keyring and internal/jwe.
package kmstest

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms"
)

// Fault is a way a key service misbehaves.
type Fault int

const (
	// Healthy is a well-behaved service.
	Healthy Fault = iota
	// PermissionDenied refuses every call as the service does when the
	// webhook's identity may not use the key.
	PermissionDenied
	// Unavailable fails every call as the service does when it is down or
	// overloaded.
	Unavailable
	// Slow holds every call far longer than the cases' deadlines.
	Slow
)

// Key is what the webhook configures for a key: a Decrypter that can also
// report its public key, as every remote provider's key can.
type Key interface {
	kms.Decrypter
	PublicKeyer
}

// PublicKeyer is a key that reports the public key values are encrypted to,
// with the kid they carry.
type PublicKeyer interface {
	PublicKey(ctx context.Context) (jwe.PublicKey, error)
}

// Service is a key service under test. The cases call its methods from the
// test goroutine only.
type Service interface {
	// Algorithms are the JWE algorithms its RSA keys decrypt.
	Algorithms() []string
	// NewKey creates a key that decrypts alg and returns the Key for it.
	NewKey(t *testing.T, alg string) Key
	// Rotate makes a new version of k (or, for a service without key
	// versions, a new key) and returns the Key whose PublicKey is the new
	// one: k itself when k stands for every version.
	Rotate(t *testing.T, k Key) Key
	// MismatchedKey returns a Key and a kid it answers to whose algorithm
	// does not decrypt alg.
	MismatchedKey(t *testing.T) (k kms.Decrypter, kid, alg string)
	// SetFault makes every later call misbehave as f says; Healthy heals.
	// It returns false when the service cannot misbehave on demand (a real
	// service): the case is skipped.
	SetFault(t *testing.T, f Fault) bool
	// DecryptCalls counts the decrypt calls the service received.
	DecryptCalls() int
	// IsPermissionDenied and IsUnavailable classify an error as the
	// provider's API documents it.
	IsPermissionDenied(err error) bool
	IsUnavailable(err error) bool
}

// Run runs every case, each against a service from newService.
func Run(t *testing.T, newService func(t *testing.T) Service) {
	for _, c := range []struct {
		name string
		run  func(*testing.T, Service)
	}{
		{"RoundTrip", caseRoundTrip},
		{"WrongKey", caseWrongKey},
		{"PermissionDenied", casePermissionDenied},
		{"Unavailable", caseUnavailable},
		{"Timeout", caseTimeout},
		{"AlgorithmMismatch", caseAlgorithmMismatch},
		{"Rotation", caseRotation},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, newService(t))
		})
	}
}

// plaintext is what the cases encrypt.
const plaintext = "s3cr3t password"

// seal encrypts plaintext to pk under alg, as the custodian CLI does.
func seal(t *testing.T, pk jwe.PublicKey, alg string) *jwe.Object {
	t.Helper()
	return Seal(t, pk, alg, plaintext)
}

// Seal encrypts plaintext to pk under alg, bound to namespace "hr", as the
// custodian CLI does, and parses it as the webhook does.
func Seal(t testing.TB, pk jwe.PublicKey, alg, plaintext string) *jwe.Object {
	t.Helper()
	value, err := jwe.Encrypt([]byte(plaintext), jwe.Scope{Namespace: "hr"}, "", jwe.PublicKey{Key: pk.Key, KeyID: pk.KeyID, Algorithm: alg})
	if err != nil {
		t.Fatal(err)
	}
	obj, err := jwe.Parse([]byte(value))
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

func publicKey(t *testing.T, k PublicKeyer) jwe.PublicKey {
	t.Helper()
	pk, err := k.PublicKey(t.Context())
	if err != nil {
		t.Fatalf("PublicKey: %v", err)
	}
	return pk
}

// keyring feeds internal/jwe's decryption through a Keyring of keys, as the
// webhook does.
type keyring struct{ r *kms.Keyring }

func newKeyring(t *testing.T, keys ...kms.Decrypter) keyring {
	t.Helper()
	var entries []kms.Entry
	for _, k := range keys {
		entries = append(entries, kms.Entry{Decrypter: k, Provider: "test"})
	}
	r, err := kms.NewKeyring(kms.Options{}, entries...)
	if err != nil {
		t.Fatal(err)
	}
	return keyring{r}
}

func (k keyring) Unwrap(ctx context.Context, r jwe.Recipient) ([]byte, error) {
	return k.r.Unwrap(ctx, "hr", r)
}

// open decrypts obj with keys and checks the plaintext.
func open(t *testing.T, obj *jwe.Object, keys ...kms.Decrypter) {
	t.Helper()
	got, _, err := obj.Decrypt(t.Context(), newKeyring(t, keys...))
	if err != nil {
		t.Fatalf("decrypt value for %q: %v", obj.KeyIDs(), err)
	}
	if string(got) != plaintext {
		t.Fatalf("decrypted %q, want %q", got, plaintext)
	}
}

// openErr decrypts obj with keys under ctx and returns the error, which
// must not show the plaintext.
func openErr(ctx context.Context, t *testing.T, obj *jwe.Object, keys ...kms.Decrypter) error {
	t.Helper()
	_, _, err := obj.Decrypt(ctx, newKeyring(t, keys...))
	if err == nil {
		t.Fatalf("value for %q decrypted", obj.KeyIDs())
	}
	if strings.Contains(err.Error(), plaintext) {
		t.Fatalf("error shows the plaintext: %v", err)
	}
	return err
}

func caseRoundTrip(t *testing.T, s Service) {
	for _, alg := range s.Algorithms() {
		k := s.NewKey(t, alg)
		pk := publicKey(t, k)
		if pk.Algorithm != alg && len(s.Algorithms()) == 1 {
			t.Errorf("PublicKey algorithm %q, want %q", pk.Algorithm, alg)
		}
		open(t, seal(t, pk, alg), k)
	}
}

// caseWrongKey checks that a value for another key is a mismatch: by its
// kid, without a call, and by its key material, from the service.
func caseWrongKey(t *testing.T, s Service) {
	alg := s.Algorithms()[0]
	a, b := s.NewKey(t, alg), s.NewKey(t, alg)
	pa, pb := publicKey(t, a), publicKey(t, b)
	calls := s.DecryptCalls()
	err := openErr(t.Context(), t, seal(t, pb, alg), a)
	if !errors.Is(err, jwe.ErrKeyMismatch) {
		t.Errorf("kid of another key: %v, want ErrKeyMismatch", err)
	}
	w := jwe.Recipient{KeyID: pb.KeyID, Algorithm: alg, EncryptedKey: []byte("x")}
	if _, err := a.Unwrap(t.Context(), w); !errors.Is(err, jwe.ErrKeyMismatch) {
		t.Errorf("Unwrap with another key's kid: %v, want ErrKeyMismatch", err)
	}
	if n := s.DecryptCalls() - calls; n != 0 {
		t.Errorf("%d decrypt calls for another key's kid, want 0", n)
	}
	pb.KeyID = pa.KeyID // b's key material, labelled a
	if err := openErr(t.Context(), t, seal(t, pb, alg), a); !errors.Is(err, jwe.ErrKeyMismatch) {
		t.Errorf("another key's ciphertext: %v, want ErrKeyMismatch", err)
	}
}

// faulty returns a key with a value sealed to it, opened once (so that
// whatever the provider caches is cached), and then sets f.
func faulty(t *testing.T, s Service, f Fault) (Key, *jwe.Object) {
	t.Helper()
	alg := s.Algorithms()[0]
	k := s.NewKey(t, alg)
	obj := seal(t, publicKey(t, k), alg)
	open(t, obj, k)
	if !s.SetFault(t, f) {
		t.Skip("the service cannot be made to misbehave")
	}
	return k, obj
}

func casePermissionDenied(t *testing.T, s Service) {
	k, obj := faulty(t, s, PermissionDenied)
	err := openErr(t.Context(), t, obj, k)
	if errors.Is(err, jwe.ErrKeyMismatch) || !s.IsPermissionDenied(err) {
		t.Errorf("permission denied: %v, want a permission-denied error and no mismatch", err)
	}
}

func caseUnavailable(t *testing.T, s Service) {
	k, obj := faulty(t, s, Unavailable)
	err := openErr(t.Context(), t, obj, k)
	if errors.Is(err, jwe.ErrKeyMismatch) || !s.IsUnavailable(err) || s.IsPermissionDenied(err) {
		t.Errorf("unavailable: %v, want an unavailable error and no mismatch", err)
	}
	s.SetFault(t, Healthy)
	open(t, obj, k)
}

// deadline is the cases' deadline for a call to a Slow service.
const deadline = 300 * time.Millisecond

func caseTimeout(t *testing.T, s Service) {
	k, obj := faulty(t, s, Slow)
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, _, err := obj.Decrypt(ctx, newKeyring(t, k))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, jwe.ErrKeyMismatch) {
			t.Errorf("past the deadline: %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the call outlived its context's deadline by a minute")
	}
}

// caseAlgorithmMismatch checks that a key whose algorithm does not decrypt
// the value's alg is a configuration error found before any decrypt call.
func caseAlgorithmMismatch(t *testing.T, s Service) {
	k, kid, alg := s.MismatchedKey(t)
	calls := s.DecryptCalls()
	ek := make([]byte, 256)
	rand.Read(ek)
	_, err := k.Unwrap(t.Context(), jwe.Recipient{KeyID: kid, Algorithm: alg, EncryptedKey: ek})
	if err == nil || errors.Is(err, jwe.ErrKeyMismatch) {
		t.Errorf("key that does not decrypt %s: %v, want an error other than a mismatch", alg, err)
	}
	if n := s.DecryptCalls() - calls; n != 0 {
		t.Errorf("%d decrypt calls, want none", n)
	}
}

// caseRotation checks that after a rotation the new key's values and the
// old ones open side by side, under different kids.
func caseRotation(t *testing.T, s Service) {
	alg := s.Algorithms()[0]
	old := s.NewKey(t, alg)
	pk1 := publicKey(t, old)
	v1 := seal(t, pk1, alg)
	rotated := s.Rotate(t, old)
	pk2 := publicKey(t, rotated)
	if pk1.KeyID == pk2.KeyID {
		t.Fatalf("the rotated key has the old kid %q", pk1.KeyID)
	}
	v2 := seal(t, pk2, alg)
	keys := []kms.Decrypter{old}
	if rotated.KeyID() != old.KeyID() {
		keys = append(keys, rotated)
	}
	open(t, v1, keys...)
	open(t, v2, keys...)
}
