// Package kms holds the key services that unwrap JWE content-encryption keys:
// the Decrypter interface each provider implements, and the Keyring that picks a
// provider by key ID and enforces each key's namespace policy.
package kms

import (
	"context"
	"crypto"
	"errors"

	"github.com/go-jose/go-jose/v4"
)

// ErrKeyMismatch means "this key does not open this value": the key ID is not
// configured, or a local key could not unwrap the content key. Callers may try
// another recipient. Every other error from a Decrypter means the key service
// failed and is fatal for the value.
var ErrKeyMismatch = errors.New("key does not match")

// ErrUnwrapFailed marks an ErrKeyMismatch that came from a configured key
// asked to unwrap: the key was selected but did not open the encrypted key
// (a wrong key, or a modified encrypted key). Callers may still try another
// recipient; when none opens, the answer must be the same as for content that
// does not authenticate (RFC 7516 section 11.5).
var ErrUnwrapFailed = errors.New("the key did not open the encrypted key")

// ErrOverloaded means the webhook already has as many key-service calls in
// flight as it allows, so it refused this one at once rather than queue it
// past the apiserver's timeout. Nothing is wrong with the value: the caller
// should answer "overloaded, retry" (HTTP 429) and the client retry later.
var ErrOverloaded = errors.New("too many key-service calls in flight")

// WrappedKey is one JWE recipient's encrypted content-encryption key with what a
// key service needs to unwrap it.
type WrappedKey struct {
	// KeyID is the recipient's "kid" header; empty when the JWE names none.
	KeyID string
	// Algorithm is the recipient's "alg" header, e.g. "RSA-OAEP-256".
	Algorithm string
	// EncryptedKey is the JWE Encrypted Key (empty for none of our algorithms).
	EncryptedKey []byte
	// Header is the recipient's merged JOSE header; ECDH-ES reads "epk", "apu"
	// and "apv" from it.
	Header jose.Header
}

// Decrypter unwraps content-encryption keys with one key.
type Decrypter interface {
	// KeyID is the key ID this decrypter answers to.
	KeyID() string
	// Unwrap returns the content-encryption key. It returns an error wrapping
	// ErrKeyMismatch when the key cannot open k, and any other error when the
	// key service failed.
	Unwrap(ctx context.Context, k WrappedKey) ([]byte, error)
}

// KeyIDMatcher is implemented by a Decrypter that answers to a family of key
// IDs rather than one, such as every version of a KMS key. The keyring asks
// it when no Decrypter's KeyID equals a value's kid.
type KeyIDMatcher interface {
	MatchKeyID(kid string) bool
}

// PublicKey is a key to encrypt to, as a key service publishes it.
type PublicKey struct {
	// Key is an *rsa.PublicKey or an *ecdsa.PublicKey.
	Key crypto.PublicKey
	// KeyID is the kid the webhook expects in values encrypted to Key.
	KeyID string
	// Algorithm is the JWE "alg" that Key decrypts, e.g. "RSA-OAEP-256".
	Algorithm string
}

// PublicKeyer is implemented by a key service that can return the public key
// to encrypt to. The custodian CLI uses it.
type PublicKeyer interface {
	PublicKey(ctx context.Context) (PublicKey, error)
}
