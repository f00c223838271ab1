package jwe

import (
	"context"
	"encoding/json"
	"errors"
)

// ErrKeyMismatch means "this key does not open this recipient": the key ID
// names no key the caller holds, or the key could not unwrap the content key.
// A KeyUnwrapper returns an error wrapping it so that Decrypt tries the next
// recipient; every other error is fatal for the value. It is the one "not my
// key" error of the webhook: key services, the keyring and Decrypt all use it.
var ErrKeyMismatch = errors.New("key does not match")

// Recipient is one recipient of a JWE: whose key wraps the content key, and
// everything a key service needs to unwrap it. It holds no go-jose type, so a
// key service depends on this package's types only.
type Recipient struct {
	// KeyID is the "kid" header; empty when the JWE names none.
	KeyID string
	// Algorithm is the "alg" header, e.g. "RSA-OAEP-256".
	Algorithm string
	// EncryptedKey is the wrapped content-encryption key.
	EncryptedKey []byte

	// The ECDH-ES inputs, as written in the recipient's headers (JSON), nil
	// when absent: "epk", the ephemeral public key (a JWK), and "apu" and
	// "apv", the party information (base64url strings). Only ECDH-ES key
	// services read them; they check them.
	EphemeralKey json.RawMessage
	PartyUInfo   json.RawMessage
	PartyVInfo   json.RawMessage
}

// KeyUnwrapper unwraps the content-encryption key of one recipient. The error
// wraps ErrKeyMismatch when the key is not the recipient's; any other error
// means unwrapping failed and stops Decrypt.
type KeyUnwrapper interface {
	Unwrap(ctx context.Context, r Recipient) ([]byte, error)
}
