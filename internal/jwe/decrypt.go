package jwe

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// ErrDecrypt means the content key was unwrapped but the content does not
// authenticate: the ciphertext, tag, IV or protected header was changed, or
// the key service returned a wrong key.
var ErrDecrypt = errors.New("content does not decrypt (ciphertext, tag or protected header modified)")

// Decrypt unwraps the content key of the first recipient u holds a key for
// and decrypts the content with it. It returns the recipient that was used.
// When u holds the key of no recipient, the error wraps ErrKeyMismatch.
// Errors never contain the plaintext or the content key.
func (o *Object) Decrypt(ctx context.Context, u KeyUnwrapper) ([]byte, Recipient, error) {
	plaintext, cek, r, err := o.open(ctx, u)
	clear(cek)
	return plaintext, r, err
}

// open is Decrypt that also returns the content key, which authenticated
// the content. The caller clears it when done.
func (o *Object) open(ctx context.Context, u KeyUnwrapper) (plaintext, cek []byte, r Recipient, err error) {
	d := &opaque{ctx: ctx, obj: o, u: u, used: -1}
	_, _, plaintext, err = o.parsed.DecryptMulti(d)
	switch {
	case d.fatal != nil:
		return nil, nil, Recipient{}, d.fatal
	case d.used < 0 && len(d.misses) > 0:
		return nil, nil, Recipient{}, errors.Join(d.misses...)
	case d.used < 0:
		return nil, nil, Recipient{}, fmt.Errorf("malformed JWE: %w", err)
	case err != nil:
		clear(d.cek)
		return nil, nil, o.Recipients[d.used], ErrDecrypt
	}
	return plaintext, d.cek, o.Recipients[d.used], nil
}

// opaque is the go-jose key decrypter that asks a KeyUnwrapper, with the
// request's context, for each recipient's content key in turn. go-jose
// reports every failure as the same error, so opaque keeps what happened.
type opaque struct {
	ctx    context.Context
	obj    *Object
	u      KeyUnwrapper
	used   int     // recipient whose key was unwrapped, or -1
	cek    []byte  // a copy of the unwrapped content key
	misses []error // ErrKeyMismatch answers, one per recipient passed over
	fatal  error   // the first error that is not ErrKeyMismatch
}

var _ jose.OpaqueKeyDecrypter = (*opaque)(nil)

func (d *opaque) DecryptKey(encryptedKey []byte, _ jose.Header) ([]byte, error) {
	if d.fatal != nil || d.used >= 0 {
		// A key service failed, or a key was unwrapped and the content
		// still did not decrypt: no other recipient is asked.
		return nil, errStop
	}
	i := d.recipient(encryptedKey)
	if i < 0 {
		d.fatal = errors.New("recipient not found")
		return nil, errStop
	}
	// Parse read the same headers go-jose passes in: the recipient carries
	// all of them that a key service needs.
	cek, err := d.u.Unwrap(d.ctx, d.obj.Recipients[i])
	switch {
	case errors.Is(err, ErrKeyMismatch):
		d.misses = append(d.misses, fmt.Errorf("no configured key matches: %w", err))
		return nil, err
	case err != nil:
		d.fatal = err
		return nil, errStop
	}
	d.used = i
	d.cek = bytes.Clone(cek)
	return cek, nil
}

var errStop = errors.New("stop")

func (d *opaque) recipient(encryptedKey []byte) int {
	for i, r := range d.obj.Recipients {
		if bytes.Equal(r.EncryptedKey, encryptedKey) {
			return i
		}
	}
	return -1
}
