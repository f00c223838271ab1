// Package kms holds the key services that unwrap JWE content-encryption keys:
// the Decrypter interface each provider implements, and the Keyring that picks a
// provider by key ID, enforces each key's namespace policy and puts the
// content-key cache, the timeout and the metrics around each key.
//
// A key service sees a JWE recipient as a jwe.Recipient and answers "this is
// not my key" with an error wrapping jwe.ErrKeyMismatch: both are defined once,
// in internal/jwe, where values are parsed and decrypted.
package kms

import (
	"context"
	"errors"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
)

// ErrUnwrapFailed marks a jwe.ErrKeyMismatch that came from a configured key
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

// Decrypter is one key of a key service: the interface a provider implements.
// Every method is required, so that a decorator that embeds a Decrypter
// forwards all of them.
type Decrypter interface {
	// KeyID is the key ID this decrypter is configured under: a key's own ID,
	// or the ID of a family of keys such as every version of a KMS key.
	KeyID() string
	// MatchKeyID reports whether kid, a value's "kid", names this key: for a
	// single key that is kid == KeyID(); for a family, any member of it.
	MatchKeyID(kid string) bool
	// Unwrap returns the content-encryption key of r. It returns an error
	// wrapping jwe.ErrKeyMismatch when the key cannot open r, and any other
	// error when the key service failed.
	Unwrap(ctx context.Context, r jwe.Recipient) ([]byte, error)
}
