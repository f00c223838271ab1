package kms

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
)

// fakeDecrypter answers to kid with cek, or fails with err.
type fakeDecrypter struct {
	kid   string
	cek   []byte
	err   error
	calls atomic.Int32
	asked atomic.Value // the kid of the last recipient, a string
}

func (f *fakeDecrypter) KeyID() string { return f.kid }

func (f *fakeDecrypter) MatchKeyID(kid string) bool { return kid == f.kid }

func (f *fakeDecrypter) Unwrap(_ context.Context, r jwe.Recipient) ([]byte, error) {
	f.calls.Add(1)
	f.asked.Store(r.KeyID)
	if f.err != nil {
		return nil, f.err
	}
	return f.cek, nil
}

func newFake(kid string) *fakeDecrypter {
	return &fakeDecrypter{kid: kid, cek: []byte("cek of " + kid)}
}

func mustKeyring(t *testing.T, entries ...Entry) *Keyring {
	t.Helper()
	r, err := NewKeyring(Options{}, entries...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestKeyringUnwrap(t *testing.T) {
	t.Parallel()
	errDown := errors.New("kms unavailable")
	tests := []struct {
		name      string
		entries   []Entry
		kid       string
		namespace string
		wantCEK   string
		wantIs    error  // the error must wrap it
		wantErr   string // and be exactly this
	}{
		{
			name:    "by kid",
			entries: []Entry{{Decrypter: newFake("a"), Provider: "local"}, {Decrypter: newFake("b"), Provider: "vault"}},
			kid:     "b", namespace: "default",
			wantCEK: "cek of b",
		},
		{
			name:    "no kid, one key",
			entries: []Entry{{Decrypter: newFake("a"), Provider: "local"}},
			kid:     "", namespace: "default",
			wantCEK: "cek of a",
		},
		{
			name:    "no kid, two keys",
			entries: []Entry{{Decrypter: newFake("a"), Provider: "local"}, {Decrypter: newFake("b"), Provider: "vault"}},
			kid:     "", namespace: "default",
			wantIs:  jwe.ErrKeyMismatch,
			wantErr: `value names no key and 2 configured keys can decrypt "RSA-OAEP-256": key does not match`,
		},
		{
			name: "no kid, one RSA key and one EC key",
			entries: []Entry{{Decrypter: newFake("ec"), Provider: "local", KeyType: KeyTypeEC},
				{Decrypter: newFake("rsa"), Provider: "vault", KeyType: KeyTypeRSA}},
			kid: "", namespace: "default",
			wantCEK: "cek of rsa",
		},
		{
			name: "no kid, two RSA keys and one EC key",
			entries: []Entry{{Decrypter: newFake("ec"), Provider: "local", KeyType: KeyTypeEC},
				{Decrypter: newFake("rsa1"), Provider: "vault", KeyType: KeyTypeRSA},
				{Decrypter: newFake("rsa2"), Provider: "gcpkms", KeyType: KeyTypeRSA}},
			kid: "", namespace: "default",
			wantIs:  jwe.ErrKeyMismatch,
			wantErr: `value names no key and 2 configured keys can decrypt "RSA-OAEP-256": key does not match`,
		},
		{
			name:    "unknown kid",
			entries: []Entry{{Decrypter: newFake("a"), Provider: "local"}},
			kid:     "x", namespace: "default",
			wantIs:  jwe.ErrKeyMismatch,
			wantErr: `no configured key has kid "x": key does not match`,
		},
		{
			name:    "namespace matches glob",
			entries: []Entry{{Decrypter: newFake("a"), Provider: "gcpkms", Namespaces: []string{"prod", "team-*"}}},
			kid:     "a", namespace: "team-hr",
			wantCEK: "cek of a",
		},
		{
			name:    "namespace matches name",
			entries: []Entry{{Decrypter: newFake("a"), Provider: "gcpkms", Namespaces: []string{"prod", "team-*"}}},
			kid:     "a", namespace: "prod",
			wantCEK: "cek of a",
		},
		{
			name:    "namespace denied",
			entries: []Entry{{Decrypter: newFake("a"), Provider: "gcpkms", Namespaces: []string{"prod", "team-*"}}},
			kid:     "a", namespace: "production",
			wantIs:  ErrNamespaceNotAllowed,
			wantErr: `key "a" may not be used in namespace "production": namespace not allowed for key`,
		},
		{
			name:    "namespace denied, no kid",
			entries: []Entry{{Decrypter: newFake("a"), Provider: "gcpkms", Namespaces: []string{"team-?"}}},
			kid:     "", namespace: "team-hr",
			wantIs:  ErrNamespaceNotAllowed,
			wantErr: `key "a" may not be used in namespace "team-hr": namespace not allowed for key`,
		},
		{
			name:    "decrypter mismatch",
			entries: []Entry{{Decrypter: &fakeDecrypter{kid: "a", err: fmt.Errorf("RSA-OAEP-256: %w", jwe.ErrKeyMismatch)}, Provider: "local"}},
			kid:     "a", namespace: "default",
			wantIs:  jwe.ErrKeyMismatch,
			wantErr: `unwrap with key "a" (local): RSA-OAEP-256: key does not match`,
		},
		{
			name:    "decrypter failure",
			entries: []Entry{{Decrypter: &fakeDecrypter{kid: "a", err: errDown}, Provider: "vault"}},
			kid:     "a", namespace: "default",
			wantIs:  errDown,
			wantErr: `unwrap with key "a" (vault): kms unavailable`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := mustKeyring(t, tt.entries...)
			cek, err := r.Unwrap(t.Context(), tt.namespace, jwe.Recipient{KeyID: tt.kid, Algorithm: "RSA-OAEP-256"})
			if tt.wantErr == "" {
				if err != nil || string(cek) != tt.wantCEK {
					t.Fatalf("got %q, %v; want %q", cek, err, tt.wantCEK)
				}
				// The key service is asked with the selected key's ID,
				// also for a value that names none.
				for _, e := range tt.entries {
					f := e.Decrypter.(*fakeDecrypter)
					if asked, _ := f.asked.Load().(string); f.calls.Load() > 0 && asked != f.kid {
						t.Errorf("key %q was asked with kid %q", f.kid, asked)
					}
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("got error %v, want %q", err, tt.wantErr)
			}
			if !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v does not wrap %v", err, tt.wantIs)
			}
			if tt.wantIs != jwe.ErrKeyMismatch && errors.Is(err, jwe.ErrKeyMismatch) {
				t.Errorf("error %v is a mismatch; want a fatal error", err)
			}
			if errors.Is(err, ErrNamespaceNotAllowed) {
				for _, e := range tt.entries {
					if n := e.Decrypter.(*fakeDecrypter).calls.Load(); n != 0 {
						t.Errorf("decrypter called %d times for a denied namespace", n)
					}
				}
			}
		})
	}
}

func TestNewKeyringErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		entries []Entry
		wantErr string
	}{
		{"none", nil, "keyring: no keys configured"},
		{"no decrypter", []Entry{{Provider: "local"}}, "keyring: entry 0 has no decrypter"},
		{"empty kid", []Entry{{Decrypter: newFake(""), Provider: "vault"}}, "keyring: entry 0 (vault) has an empty key ID"},
		{"no provider", []Entry{{Decrypter: newFake("a")}}, `keyring: key "a" has no provider`},
		{
			"duplicate kid",
			[]Entry{{Decrypter: newFake("a"), Provider: "local"}, {Decrypter: newFake("b"), Provider: "local"}, {Decrypter: newFake("a"), Provider: "gcpkms"}},
			`keyring: key "a" (gcpkms) configured twice, also by local`,
		},
		{
			"bad pattern",
			[]Entry{{Decrypter: newFake("a"), Provider: "local", Namespaces: []string{"team-["}}},
			`keyring: key "a": namespace pattern "team-[": syntax error in pattern`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := NewKeyring(Options{}, tt.entries...)
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("got %v, %v; want error %q", r, err, tt.wantErr)
			}
		})
	}
}

func TestKeyringAccessors(t *testing.T) {
	t.Parallel()
	namespaces := []string{"prod"}
	r := mustKeyring(t,
		Entry{Decrypter: newFake("c"), Provider: "vault"},
		Entry{Decrypter: newFake("a"), Provider: "local", Namespaces: namespaces},
		Entry{Decrypter: newFake("b"), Provider: "gcpkms"},
	)
	ids := r.KeyIDs()
	if want := []string{"a", "b", "c"}; !slices.Equal(ids, want) {
		t.Errorf("KeyIDs() = %q, want %q", ids, want)
	}
	if p, ok := r.Provider("b"); !ok || p != "gcpkms" {
		t.Errorf(`Provider("b") = %q, %v; want "gcpkms", true`, p, ok)
	}
	if p, ok := r.Provider("x"); ok || p != "" {
		t.Errorf(`Provider("x") = %q, %v; want "", false`, p, ok)
	}

	// Changing what went in or came out leaves the keyring as it was.
	ids[0] = "z"
	namespaces[0] = "*"
	if got := r.KeyIDs(); got[0] != "a" {
		t.Errorf("KeyIDs()[0] = %q after changing a returned slice", got[0])
	}
	if _, err := r.Unwrap(t.Context(), "default", jwe.Recipient{KeyID: "a"}); !errors.Is(err, ErrNamespaceNotAllowed) {
		t.Errorf("after changing the Namespaces given: got error %v, want ErrNamespaceNotAllowed", err)
	}
}

func TestKeyringConcurrent(t *testing.T) {
	t.Parallel()
	a, b := newFake("a"), newFake("b")
	r := mustKeyring(t, Entry{Decrypter: a, Provider: "local"}, Entry{Decrypter: b, Provider: "local", Namespaces: []string{"b-*"}})
	errs := make(chan error, 64)
	for i := range cap(errs) {
		go func() {
			kid, want := "a", a.cek
			if i%2 == 1 {
				kid, want = "b", b.cek
			}
			cek, err := r.Unwrap(t.Context(), "b-1", jwe.Recipient{KeyID: kid})
			if err == nil && !bytes.Equal(cek, want) {
				err = fmt.Errorf("kid %q: got %q", kid, cek)
			}
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// matcher is a fake Decrypter that also answers to the kids match accepts.
type matcher struct {
	*fakeDecrypter
	match func(kid string) bool
}

func (m *matcher) MatchKeyID(kid string) bool { return m.match(kid) }

func versions(kid string) *matcher {
	return &matcher{newFake(kid), func(s string) bool { return strings.HasPrefix(s, kid+"/versions/") }}
}

func TestKeyringKeyIDMatcher(t *testing.T) {
	t.Parallel()
	r := mustKeyring(t,
		Entry{Decrypter: versions("keys/hr"), Provider: "gcpkms", Namespaces: []string{"hr"}},
		Entry{Decrypter: newFake("keys/hr/versions/1"), Provider: "local"},
	)
	tests := []struct {
		kid, namespace string
		wantCEK        string
		wantIs         error
	}{
		{kid: "keys/hr/versions/2", namespace: "hr", wantCEK: "cek of keys/hr"},
		{kid: "keys/hr/versions/1", namespace: "hr", wantCEK: "cek of keys/hr/versions/1"}, // an exact kid wins
		{kid: "keys/hr/versions/2", namespace: "ops", wantIs: ErrNamespaceNotAllowed},
		{kid: "keys/ops/versions/1", namespace: "hr", wantIs: jwe.ErrKeyMismatch},
	}
	for _, tt := range tests {
		cek, err := r.Unwrap(t.Context(), tt.namespace, jwe.Recipient{KeyID: tt.kid})
		if tt.wantIs != nil {
			if !errors.Is(err, tt.wantIs) {
				t.Errorf("%s in %s: got error %v, want %v", tt.kid, tt.namespace, err, tt.wantIs)
			}
			continue
		}
		if err != nil || string(cek) != tt.wantCEK {
			t.Errorf("%s in %s: got %q, %v; want %q", tt.kid, tt.namespace, cek, err, tt.wantCEK)
		}
	}
}

func TestKeyringKeyIDMatcherAmbiguous(t *testing.T) {
	t.Parallel()
	all := func(string) bool { return true }
	r := mustKeyring(t,
		Entry{Decrypter: &matcher{newFake("b"), all}, Provider: "gcpkms"},
		Entry{Decrypter: &matcher{newFake("a"), all}, Provider: "vault"},
	)
	_, err := r.Unwrap(t.Context(), "hr", jwe.Recipient{KeyID: "c"})
	want := `kid "c" matches several configured keys: ["a" "b"]`
	if err == nil || err.Error() != want || errors.Is(err, jwe.ErrKeyMismatch) {
		t.Errorf("got error %v, want %q, not a mismatch", err, want)
	}
}
