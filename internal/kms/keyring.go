package kms

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
)

// ErrNamespaceNotAllowed means the value names a configured key that may not be
// used in the request's namespace. Unlike jwe.ErrKeyMismatch it is fatal: the key
// would open the value, but policy forbids it here.
var ErrNamespaceNotAllowed = errors.New("namespace not allowed for key")

// Entry configures one key of a Keyring.
type Entry struct {
	// Decrypter unwraps with the key; its KeyID is the kid values name.
	Decrypter Decrypter
	// Provider names the key service for errors and metrics: "local",
	// "gcpkms" or "vault".
	Provider string
	// Namespaces limits the key to namespaces matching one of these
	// path.Match patterns. Empty allows every namespace.
	Namespaces []string
	// PublicKeys returns the public keys the key answers to (every usable
	// version of a family), which the webhook publishes; nil when they
	// cannot be had.
	PublicKeys func(context.Context) ([]jwe.PublicKey, error)
	// KeyType is the kind of key, KeyTypeRSA or KeyTypeEC: a value without
	// kid goes to the one key of its algorithm's kind. Empty means either.
	KeyType string
}

// The kinds of key of Entry.KeyType.
const (
	KeyTypeRSA = "RSA"
	KeyTypeEC  = "EC"
)

// keyTypeOf is the kind of key that decrypts the JWE algorithm alg, or ""
// for an algorithm the keyring does not know.
func keyTypeOf(alg string) string {
	switch {
	case strings.HasPrefix(alg, "RSA-OAEP"):
		return KeyTypeRSA
	case strings.HasPrefix(alg, "ECDH-ES"):
		return KeyTypeEC
	}
	return ""
}

type keyringEntry struct {
	dec        Decrypter // with the chain of Options around it
	provider   string
	namespaces []string
	publicKeys func(context.Context) ([]jwe.PublicKey, error)
	keyType    string
}

// Keyring picks the Decrypter for a JWE recipient by key ID and enforces each
// key's namespace policy. It does not change after NewKeyring, so it is safe
// for concurrent use; to change the keys, build a new Keyring.
type Keyring struct {
	keys    map[string]keyringEntry
	ids     []string // sorted
	timeout time.Duration
}

// NewKeyring returns a Keyring holding entries, each key behind the chain of
// opts (see Options). It fails when there are no entries, an entry lacks a
// decrypter, key ID or provider, two entries share a key ID, or a namespace
// pattern is malformed.
func NewKeyring(opts Options, entries ...Entry) (*Keyring, error) {
	if len(entries) == 0 {
		return nil, errors.New("keyring: no keys configured")
	}
	r := &Keyring{keys: make(map[string]keyringEntry, len(entries)), timeout: opts.Timeout}
	for i, e := range entries {
		if e.Decrypter == nil {
			return nil, fmt.Errorf("keyring: entry %d has no decrypter", i)
		}
		kid := e.Decrypter.KeyID()
		if kid == "" {
			return nil, fmt.Errorf("keyring: entry %d (%s) has an empty key ID", i, e.Provider)
		}
		if e.Provider == "" {
			return nil, fmt.Errorf("keyring: key %q has no provider", kid)
		}
		if prev, ok := r.keys[kid]; ok {
			return nil, fmt.Errorf("keyring: key %q (%s) configured twice, also by %s", kid, e.Provider, prev.provider)
		}
		for _, p := range e.Namespaces {
			if _, err := path.Match(p, ""); err != nil {
				return nil, fmt.Errorf("keyring: key %q: namespace pattern %q: %w", kid, p, err)
			}
		}
		r.keys[kid] = keyringEntry{dec: opts.chain(e.Provider, e.Decrypter), provider: e.Provider, namespaces: slices.Clone(e.Namespaces), publicKeys: e.PublicKeys, keyType: e.KeyType}
		r.ids = append(r.ids, kid)
	}
	slices.Sort(r.ids)
	return r, nil
}

// Unwrap returns the content-encryption key of k, a recipient of a value in
// namespace. It selects the key whose KeyID is k.KeyID, else the one key whose
// MatchKeyID accepts it; when k names no key, the one configured key whose
// KeyType decrypts k's algorithm is used, and asked with its own key ID.
//
// The error wraps jwe.ErrKeyMismatch when no configured key fits k (the caller
// may try another recipient), and ErrUnwrapFailed besides when the selected key
// did not open k, ErrNamespaceNotAllowed when the key may not be used
// in namespace, and otherwise whatever the key's Decrypter returned.
func (r *Keyring) Unwrap(ctx context.Context, namespace string, k jwe.Recipient) ([]byte, error) {
	kid := k.KeyID
	var e keyringEntry
	var err error
	if kid == "" {
		// The key service is asked with the selected key's ID, never an
		// empty one.
		kid, err = r.onlyKeyFor(k.Algorithm)
		k.KeyID = kid
	}
	if err == nil {
		e, err = r.lookup(kid)
	}
	if err != nil {
		return nil, err
	}
	if !e.allows(namespace) {
		return nil, fmt.Errorf("key %q may not be used in namespace %q: %w", kid, namespace, ErrNamespaceNotAllowed)
	}
	if r.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	}
	cek, err := e.dec.Unwrap(ctx, k)
	switch {
	case errors.Is(err, jwe.ErrKeyMismatch):
		return nil, unwrapFailed{fmt.Errorf("unwrap with key %q (%s): %w", kid, e.provider, err)}
	case err != nil && errors.Is(err, context.DeadlineExceeded):
		return nil, fmt.Errorf("unwrap with key %q: key service %s did not answer in time: %w", kid, e.provider, err)
	case err != nil:
		return nil, fmt.Errorf("unwrap with key %q (%s): %w", kid, e.provider, err)
	}
	return cek, nil
}

// unwrapFailed marks err as ErrUnwrapFailed without changing its text.
type unwrapFailed struct{ error }

func (e unwrapFailed) Unwrap() []error { return []error{e.error, ErrUnwrapFailed} }

// onlyKeyFor returns the ID of the one configured key of the kind that
// decrypts alg, for a value that names no key.
func (r *Keyring) onlyKeyFor(alg string) (string, error) {
	want := keyTypeOf(alg)
	var found []string
	for _, id := range r.ids {
		if t := r.keys[id].keyType; t == "" || want == "" || t == want {
			found = append(found, id)
		}
	}
	if len(found) != 1 {
		return "", fmt.Errorf("value names no key and %d configured keys can decrypt %q: %w", len(found), alg, jwe.ErrKeyMismatch)
	}
	return found[0], nil
}

// lookup returns the entry for kid: the key with that ID, else the one key
// whose MatchKeyID accepts it.
func (r *Keyring) lookup(kid string) (keyringEntry, error) {
	if e, ok := r.keys[kid]; ok {
		return e, nil
	}
	var found []string
	for _, id := range r.ids {
		if r.keys[id].dec.MatchKeyID(kid) {
			found = append(found, id)
		}
	}
	switch len(found) {
	case 0:
		return keyringEntry{}, fmt.Errorf("no configured key has kid %q: %w", kid, jwe.ErrKeyMismatch)
	case 1:
		return r.keys[found[0]], nil
	}
	// Fail closed rather than guess which key's namespace policy applies.
	return keyringEntry{}, fmt.Errorf("kid %q matches several configured keys: %q", kid, found)
}

func (e keyringEntry) allows(namespace string) bool {
	if len(e.namespaces) == 0 {
		return true
	}
	for _, p := range e.namespaces {
		// NewKeyring rejected malformed patterns.
		if ok, _ := path.Match(p, namespace); ok {
			return true
		}
	}
	return false
}

// KeyIDs returns the configured key IDs, sorted.
func (r *Keyring) KeyIDs() []string {
	return slices.Clone(r.ids)
}

// Provider returns the provider of the key with ID kid, and whether there is
// such a key.
func (r *Keyring) Provider(kid string) (string, bool) {
	e, ok := r.keys[kid]
	return e.provider, ok
}
