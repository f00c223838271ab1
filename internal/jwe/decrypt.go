package jwe

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// ErrNoKey means none of a JWE's recipients names a key the caller holds. A
// KeyUnwrapper returns an error wrapping it to say "not my key, try the next
// recipient"; any other error stops Decrypt.
var ErrNoKey = errors.New("no configured key matches")

// ErrDecrypt means the content key was unwrapped but the content does not
// authenticate: the ciphertext, tag, IV or protected header was changed, or
// the key service returned a wrong key.
var ErrDecrypt = errors.New("content does not decrypt (ciphertext, tag or protected header modified)")

// KeyUnwrapper unwraps the content-encryption key of one recipient.
type KeyUnwrapper interface {
	UnwrapKey(ctx context.Context, r Recipient) ([]byte, error)
}

// Decrypt unwraps the content key of the first recipient u holds a key for
// and decrypts the content with it. It returns the recipient that was used.
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
	misses []error // ErrNoKey answers, one per recipient passed over
	fatal  error   // the first error that is not ErrNoKey
}

var _ jose.OpaqueKeyDecrypter = (*opaque)(nil)

func (d *opaque) DecryptKey(encryptedKey []byte, header jose.Header) ([]byte, error) {
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
	r := d.obj.Recipients[i]
	r.Header = header
	cek, err := d.u.UnwrapKey(d.ctx, r)
	switch {
	case errors.Is(err, ErrNoKey):
		d.misses = append(d.misses, err)
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
