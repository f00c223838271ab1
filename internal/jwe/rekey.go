package jwe

import (
	"context"
	"crypto/aes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"
	josecipher "github.com/go-jose/go-jose/v4/cipher"
)

// ErrCannotAdd means a recipient cannot be added to a JWE without encrypting
// its content again: it is a compact serialization, whose one recipient is
// in the protected header, or its shared headers name the key.
var ErrCannotAdd = errors.New("a recipient cannot be added without re-encrypting the content")

// Reencrypt opens o with u and encrypts its content again, under a new
// content key, for recipients, with o's scope and content encryption. The
// plaintext stays in memory and is cleared. Errors never contain it.
func (o *Object) Reencrypt(ctx context.Context, u KeyUnwrapper, recipients ...PublicKey) (string, error) {
	plaintext, _, err := o.Decrypt(ctx, u)
	if err != nil {
		return "", err
	}
	defer clear(plaintext)
	return Encrypt(plaintext, o.Scope, o.Encryption, recipients...)
}

// AddRecipients opens o's content key with u and returns o with one more
// recipient per key, each wrapping the same content key. The protected
// header, initialization vector, ciphertext and tag stay as they are: the
// content is not encrypted again. A flattened JSON serialization becomes a
// general one. It returns an error wrapping ErrCannotAdd for a compact
// serialization or one whose shared headers name "alg" or "kid". The content
// key stays in memory and is cleared.
func (o *Object) AddRecipients(ctx context.Context, u KeyUnwrapper, keys ...PublicKey) (string, error) {
	if o.Serialization != JSON {
		return "", fmt.Errorf("%w: a compact JWE has its recipient in the protected header", ErrCannotAdd)
	}
	if n := len(o.Recipients) + len(keys); n > MaxRecipients {
		return "", fmt.Errorf("%d recipients, more than the limit of %d", n, MaxRecipients)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(o.value), &raw); err != nil {
		return "", fmt.Errorf("add recipient: %w", err)
	}
	if err := sharedKeyParams(raw); err != nil {
		return "", err
	}
	recipients, err := generalRecipients(raw)
	if err != nil {
		return "", err
	}
	plaintext, cek, _, err := o.open(ctx, u)
	clear(plaintext)
	if err != nil {
		return "", err
	}
	defer clear(cek)
	for _, pk := range keys {
		r, err := wrapKey(cek, pk)
		if err != nil {
			return "", fmt.Errorf("recipient %q: %w", pk.KeyID, err)
		}
		b, err := json.Marshal(r)
		if err != nil {
			return "", fmt.Errorf("add recipient: %w", err)
		}
		recipients = append(recipients, b)
	}
	if raw["recipients"], err = json.Marshal(recipients); err != nil {
		return "", fmt.Errorf("add recipient: %w", err)
	}
	out, err := json.Marshal(raw)
	if err != nil {
		return "", fmt.Errorf("add recipient: %w", err)
	}
	// The result follows every rule a value read back must follow.
	if _, err := Parse(out); err != nil {
		return "", fmt.Errorf("add recipient: %w", err)
	}
	return string(out), nil
}

// sharedKeyParams refuses a JWE whose protected or unprotected header names
// the key: a new recipient could not name its own.
func sharedKeyParams(raw map[string]json.RawMessage) error {
	var protected string
	if err := json.Unmarshal(raw["protected"], &protected); err != nil {
		return fmt.Errorf("add recipient: protected header: %w", err)
	}
	p, err := decodePart(protected)
	if err != nil {
		return fmt.Errorf("add recipient: protected header: %w", err)
	}
	for name, h := range map[string][]byte{"protected": p, "unprotected": raw["unprotected"]} {
		var params map[string]json.RawMessage
		if len(h) > 0 && json.Unmarshal(h, &params) != nil {
			return fmt.Errorf("add recipient: %s header is not a JSON object", name)
		}
		for _, k := range []string{"alg", "kid", "epk"} {
			if _, ok := params[k]; ok {
				return fmt.Errorf("%w: the %s header has %q", ErrCannotAdd, name, k)
			}
		}
	}
	return nil
}

// generalRecipients returns the "recipients" of raw, turning a flattened serialization's "header" and
// "encrypted_key" into the first recipient.
func generalRecipients(raw map[string]json.RawMessage) ([]json.RawMessage, error) {
	var rs []json.RawMessage
	if list, ok := raw["recipients"]; ok {
		if err := json.Unmarshal(list, &rs); err != nil {
			return nil, fmt.Errorf("add recipient: recipients: %w", err)
		}
		delete(raw, "encrypted_key") // an exact copy of the first one's, as Parse checked
	} else {
		first := map[string]json.RawMessage{}
		for _, m := range []string{"header", "encrypted_key"} {
			if v, ok := raw[m]; ok {
				first[m] = v
				delete(raw, m)
			}
		}
		b, err := json.Marshal(first)
		if err != nil {
			return nil, fmt.Errorf("add recipient: %w", err)
		}
		rs = []json.RawMessage{b}
	}
	return rs, nil
}

// jsonRecipient is one entry of "recipients" as written.
type jsonRecipient struct {
	Header       map[string]any `json:"header"`
	EncryptedKey string         `json:"encrypted_key"`
}

// wrapKey wraps cek for pk with pk's key management algorithm.
func wrapKey(cek []byte, pk PublicKey) (jsonRecipient, error) {
	alg, err := algorithmFor(pk)
	if err != nil {
		return jsonRecipient{}, err
	}
	r := jsonRecipient{Header: map[string]any{"alg": alg}}
	if pk.KeyID != "" {
		r.Header["kid"] = pk.KeyID
	}
	var ek []byte
	switch alg {
	case string(jose.RSA_OAEP_256):
		ek, err = rsa.EncryptOAEP(sha256.New(), rand.Reader, pk.Key.(*rsa.PublicKey), cek, nil)
	case string(jose.RSA_OAEP):
		ek, err = rsa.EncryptOAEP(sha1.New(), rand.Reader, pk.Key.(*rsa.PublicKey), cek, nil)
	default: // ECDH-ES+A256KW, as algorithmFor allows for EC keys
		ek, err = wrapECDH(r.Header, alg, cek, pk.Key.(*ecdsa.PublicKey))
	}
	if err != nil {
		return jsonRecipient{}, fmt.Errorf("wrap content key: %w", err)
	}
	r.EncryptedKey = base64.RawURLEncoding.EncodeToString(ek)
	return r, nil
}

// wrapECDH wraps cek with a key agreed with pub through a new ephemeral key,
// which it writes to header as "epk" (RFC 7518 section 4.6).
func wrapECDH(header map[string]any, alg string, cek []byte, pub *ecdsa.PublicKey) ([]byte, error) {
	if _, err := pub.ECDH(); err != nil {
		return nil, errors.New("public key is not a valid point on its curve")
	}
	eph, err := ecdsa.GenerateKey(pub.Curve, rand.Reader)
	if err != nil {
		return nil, err
	}
	kek := josecipher.DeriveECDHES(alg, nil, nil, eph, pub, 32)
	defer clear(kek)
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	header["epk"] = jose.JSONWebKey{Key: &eph.PublicKey}
	return josecipher.KeyWrap(block, cek)
}
