package jwe

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/go-jose/go-jose/v4"
)

// PublicKey is a recipient to encrypt to.
type PublicKey struct {
	// Key is an *rsa.PublicKey or an *ecdsa.PublicKey.
	Key crypto.PublicKey
	// KeyID is written as the recipient's "kid"; the webhook selects its key
	// by it.
	KeyID string
	// Algorithm is the key management algorithm; empty means RSA-OAEP-256 for
	// RSA keys and ECDH-ES+A256KW for EC keys.
	Algorithm string
}

// DefaultEncryption is the content encryption Encrypt uses when none is given.
const DefaultEncryption = string(jose.A256GCM)

// Encrypt encrypts plaintext to the recipients, binding it to scope. One
// recipient gives the compact serialization; several give the JSON
// serialization with one entry per recipient. enc may be empty for
// DefaultEncryption.
func Encrypt(plaintext []byte, scope Scope, enc string, recipients ...PublicKey) (string, error) {
	if len(recipients) == 0 {
		return "", errors.New("no recipients")
	}
	if len(recipients) > MaxRecipients {
		return "", fmt.Errorf("%d recipients, more than the limit of %d", len(recipients), MaxRecipients)
	}
	if err := scope.validate(); err != nil {
		return "", err
	}
	if enc == "" {
		enc = DefaultEncryption
	}
	if !slices.Contains(ContentEncryptions, jose.ContentEncryption(enc)) {
		return "", fmt.Errorf("content encryption %q is not allowed (allowed: %s)", enc, joinAlgs(ContentEncryptions))
	}
	rs := make([]jose.Recipient, len(recipients))
	for i, pk := range recipients {
		alg, err := algorithmFor(pk)
		if err != nil {
			return "", fmt.Errorf("recipient %d: %w", i+1, err)
		}
		rs[i] = jose.Recipient{Algorithm: jose.KeyAlgorithm(alg), Key: pk.Key, KeyID: pk.KeyID}
	}
	opts := &jose.EncrypterOptions{ExtraHeaders: scope.headers()}
	e, err := jose.NewMultiEncrypter(jose.ContentEncryption(enc), rs, opts)
	if err != nil {
		return "", fmt.Errorf("encrypt: %w", err)
	}
	obj, err := e.Encrypt(plaintext)
	if err != nil {
		return "", fmt.Errorf("encrypt: %w", err)
	}
	if len(recipients) == 1 {
		return obj.CompactSerialize()
	}
	return withoutTopLevelKey(obj.FullSerialize())
}

// withoutTopLevelKey drops the copy of the first recipient's encrypted key
// that go-jose writes beside "recipients" (RFC 7516 section 7.2.1 puts it
// only inside each recipient).
func withoutTopLevelKey(full string) (string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(full), &m); err != nil {
		return "", fmt.Errorf("encrypt: %w", err)
	}
	delete(m, "encrypted_key")
	out, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encrypt: %w", err)
	}
	return string(out), nil
}

// algorithmFor checks that pk's algorithm is allowed and fits its key.
func algorithmFor(pk PublicKey) (string, error) {
	switch k := pk.Key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return "", fmt.Errorf("RSA key of %d bits is too small (at least 2048)", k.N.BitLen())
		}
		switch pk.Algorithm {
		case "":
			return string(jose.RSA_OAEP_256), nil
		case string(jose.RSA_OAEP_256), string(jose.RSA_OAEP):
			return pk.Algorithm, nil
		}
	case *ecdsa.PublicKey:
		switch pk.Algorithm {
		case "", string(jose.ECDH_ES_A256KW):
			return string(jose.ECDH_ES_A256KW), nil
		}
	default:
		return "", fmt.Errorf("unsupported public key type %T", pk.Key)
	}
	return "", fmt.Errorf("key algorithm %q is not allowed for this key (allowed: %s)", pk.Algorithm, joinAlgs(KeyAlgorithms))
}
