package kms

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
)

// keysOf returns a PublicKeys function answering with keys named kids.
func keysOf(kids ...string) func(context.Context) ([]jwe.PublicKey, error) {
	return func(context.Context) ([]jwe.PublicKey, error) {
		var out []jwe.PublicKey
		for _, kid := range kids {
			out = append(out, jwe.PublicKey{KeyID: kid})
		}
		return out, nil
	}
}

func TestKeyringPublicKeys(t *testing.T) {
	t.Parallel()
	r := mustKeyring(t,
		Entry{Decrypter: newFake("vault://t/b"), Provider: "vault", PublicKeys: keysOf("vault://t/b?version=1", "vault://t/b?version=2")},
		Entry{Decrypter: newFake("a"), Provider: "local", PublicKeys: keysOf("a")},
		Entry{Decrypter: newFake("c"), Provider: "local"}, // no public keys: left out
	)
	pks, err := r.PublicKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, pk := range pks {
		kids = append(kids, pk.KeyID)
	}
	if want := []string{"a", "vault://t/b?version=1", "vault://t/b?version=2"}; !slices.Equal(kids, want) {
		t.Fatalf("kids %q, want %q", kids, want)
	}

	errDown := errors.New("vault is down")
	r = mustKeyring(t,
		Entry{Decrypter: newFake("a"), Provider: "local", PublicKeys: keysOf("a")},
		Entry{Decrypter: newFake("b"), Provider: "vault", PublicKeys: func(context.Context) ([]jwe.PublicKey, error) { return nil, errDown }},
	)
	if pks, err := r.PublicKeys(t.Context()); !errors.Is(err, errDown) || pks != nil {
		t.Fatalf("a key service down: %v, %v; want no keys and its error", pks, err)
	}
}

// Each call has the keyring's timeout.
func TestKeyringPublicKeysTimeout(t *testing.T) {
	t.Parallel()
	r, err := NewKeyring(Options{Timeout: time.Millisecond}, Entry{Decrypter: newFake("a"), Provider: "gcpkms",
		PublicKeys: func(ctx context.Context) ([]jwe.PublicKey, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.PublicKeys(t.Context()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a deadline", err)
	}
}
