// Package local is the key service for a private key the webhook holds itself,
// read from a file (PEM, JWK or JWK Set). It unwraps RSA-OAEP-256, RSA-OAEP and
// ECDH-ES+A256KW content-encryption keys, and parses public keys for the
// custodian CLI so that both sides compute the same key IDs.
package local

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"

	"github.com/go-jose/go-jose/v4"
	josecipher "github.com/go-jose/go-jose/v4/cipher"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms"
)

// The key management algorithms a local key unwraps.
const (
	algRSAOAEP256   = string(jose.RSA_OAEP_256)
	algRSAOAEP      = string(jose.RSA_OAEP)
	algECDHESA256KW = string(jose.ECDH_ES_A256KW)
)

// Key is a local private key: an RSA key of at least 2048 bits, or an EC key on
// P-256 or P-384. Build one with ParsePrivateKeys or LoadFile.
type Key struct {
	kid string
	alg string
	rsa *rsa.PrivateKey   // set for RSA keys
	ec  *ecdsa.PrivateKey // set for EC keys
}

var _ kms.Decrypter = (*Key)(nil)

// KeyID returns the key's kid: the JWK's own "kid" if it named one, else the
// RFC 7638 thumbprint of the public key (see KeyID).
func (k *Key) KeyID() string { return k.kid }

// MatchKeyID reports whether kid is the key's kid: a local key is one key, not
// a family.
func (k *Key) MatchKeyID(kid string) bool { return kid == k.kid }

// Algorithm returns the key management algorithm to encrypt to this key with:
// the JWK's "alg" if it named one, else "RSA-OAEP-256" for RSA keys and
// "ECDH-ES+A256KW" for EC keys.
func (k *Key) Algorithm() string { return k.alg }

// Public returns the public half of the key, an *rsa.PublicKey or an
// *ecdsa.PublicKey.
func (k *Key) Public() crypto.PublicKey {
	if k.rsa != nil {
		return &k.rsa.PublicKey
	}
	return &k.ec.PublicKey
}

// PublicKeys returns the key's public half with its kid and algorithm, as the
// webhook publishes it.
func (k *Key) PublicKeys(context.Context) ([]jwe.PublicKey, error) {
	return []jwe.PublicKey{{Key: k.Public(), KeyID: k.kid, Algorithm: k.alg}}, nil
}

// Unwrap returns the content-encryption key of w. The error wraps
// jwe.ErrKeyMismatch when the key cannot open w; an algorithm this key does not
// do, or a malformed ECDH-ES header, is a different error.
func (k *Key) Unwrap(ctx context.Context, w jwe.Recipient) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var cek []byte
	var err error
	switch {
	case k.rsa != nil && w.Algorithm == algRSAOAEP256:
		cek, err = k.unwrapRSA(sha256.New(), w.EncryptedKey)
	case k.rsa != nil && w.Algorithm == algRSAOAEP:
		cek, err = k.unwrapRSA(sha1.New(), w.EncryptedKey)
	case k.ec != nil && w.Algorithm == algECDHESA256KW:
		cek, err = k.unwrapECDH(w)
	case w.Algorithm == algRSAOAEP256 || w.Algorithm == algRSAOAEP || w.Algorithm == algECDHESA256KW:
		return nil, fmt.Errorf("algorithm %q does not fit %s key", w.Algorithm, k.kind())
	default:
		return nil, fmt.Errorf("unsupported algorithm %q", w.Algorithm)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", w.Algorithm, err)
	}
	return cek, nil
}

func (k *Key) kind() string {
	if k.rsa != nil {
		return "an RSA"
	}
	return "an EC"
}

func (k *Key) unwrapRSA(h hash.Hash, encryptedKey []byte) ([]byte, error) {
	cek, err := rsa.DecryptOAEP(h, nil, k.rsa, encryptedKey, nil)
	if err != nil {
		// A wrong key and a tampered encrypted key look the same to RSA-OAEP.
		return nil, jwe.ErrKeyMismatch
	}
	return cek, nil
}

func (k *Key) unwrapECDH(w jwe.Recipient) ([]byte, error) {
	epk, err := ephemeralKey(w.EphemeralKey, k.ec)
	if err != nil {
		return nil, err
	}
	apu, err := headerBytes(w.PartyUInfo, "apu")
	if err != nil {
		return nil, err
	}
	apv, err := headerBytes(w.PartyVInfo, "apv")
	if err != nil {
		return nil, err
	}
	kek := josecipher.DeriveECDHES(w.Algorithm, apu, apv, k.ec, epk, 32)
	defer clear(kek)
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("key-encryption key: %w", err)
	}
	cek, err := josecipher.KeyUnwrap(block, w.EncryptedKey)
	if err != nil {
		// AES key wrap's integrity check fails for a wrong key and a tampered
		// encrypted key alike.
		return nil, jwe.ErrKeyMismatch
	}
	return cek, nil
}

// ephemeralKey returns the "epk" header, raw, as a public key on priv's
// curve. DeriveECDHES panics on a point off the curve, so this checks it
// first.
func ephemeralKey(raw json.RawMessage, priv *ecdsa.PrivateKey) (*ecdsa.PublicKey, error) {
	if raw == nil {
		return nil, errors.New(`header has no "epk"`)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf(`header "epk": %w`, err)
	}
	epk, ok := jwk.Key.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf(`header "epk" is %T, not an EC public key`, jwk.Key)
	}
	if epk.Curve != priv.Curve {
		return nil, fmt.Errorf(`header "epk" is on %s, the key on %s`, epk.Curve.Params().Name, priv.Curve.Params().Name)
	}
	if _, err := epk.ECDH(); err != nil {
		return nil, errors.New(`header "epk" is not a valid point on the curve`)
	}
	return epk, nil
}

// headerBytes returns raw, the string header name, base64url-decoded, or nil
// when it is absent.
func headerBytes(raw json.RawMessage, name string) ([]byte, error) {
	if raw == nil {
		return nil, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("header %q: %w", name, err)
	}
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("header %q is not a string", name)
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("header %q: %w", name, err)
	}
	return b, nil
}
