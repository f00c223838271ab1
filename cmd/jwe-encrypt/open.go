package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/local"
)

// openers opens JWE values for rekey and decrypt through the webhook's own
// keyring: with the private key files and key services given with -k, and
// with the key service a recipient's kid names (a Cloud KMS key version,
// vault://MOUNT/KEY?version=N), when the caller may decrypt with it.
// Content keys and plaintext stay in memory.
type openers struct {
	ks    *keyServices
	specs []string
	ring  *kms.Keyring // of specs, built on first use
	local []*local.Key // the key files of specs
	byKID map[string]kms.Decrypter
}

var _ jwe.KeyUnwrapper = (*openers)(nil)

// load builds the keyring of the -k keys. Key services are not called yet.
func (o *openers) load(ctx context.Context) error {
	if o.ring != nil || len(o.specs) == 0 {
		return nil
	}
	var entries []kms.Entry
	for _, spec := range o.specs {
		if isKeyService(spec) {
			d, err := o.ks.decrypter(ctx, spec)
			if err != nil {
				return err
			}
			entries = append(entries, kms.Entry{Decrypter: d, Provider: strings.Split(spec, ":")[0]})
			continue
		}
		keys, err := local.LoadFile(spec)
		if err != nil {
			return withHint(fmt.Errorf("key %q: %w", spec, err), "-k takes a private key file (PEM or JWK), gcpkms://…, vault://…, awskms://… or azurekv://…")
		}
		for _, k := range keys {
			o.local = append(o.local, k)
			entries = append(entries, kms.Entry{Decrypter: k, Provider: "local"})
		}
	}
	ring, err := kms.NewKeyring(kms.Options{}, entries...)
	if err != nil {
		return err
	}
	o.ring = ring
	return nil
}

// Unwrap unwraps r's content key with a -k key, else with the key service
// r's kid names. A key service that refuses is a miss, so that the next
// recipient is tried; its reason is kept for the error.
func (o *openers) Unwrap(ctx context.Context, r jwe.Recipient) ([]byte, error) {
	if err := o.load(ctx); err != nil {
		return nil, err
	}
	if o.ring != nil {
		cek, err := o.ring.Unwrap(ctx, "", r)
		if !errors.Is(err, jwe.ErrKeyMismatch) {
			return cek, err
		}
	}
	spec, ok := serviceSpec(r.KeyID)
	if !ok {
		return nil, mismatch{fmt.Errorf("no key given with -k has kid %q", r.KeyID)}
	}
	d, err := o.serviceKey(ctx, spec)
	if err != nil {
		return nil, mismatch{err}
	}
	cek, err := d.Unwrap(ctx, r)
	if err != nil {
		return nil, mismatch{err}
	}
	return cek, nil
}

// mismatch marks err as jwe.ErrKeyMismatch without changing its text, so that
// Decrypt passes the recipient over and reports why.
type mismatch struct{ error }

func (e mismatch) Unwrap() []error { return []error{e.error, jwe.ErrKeyMismatch} }

// serviceKey returns the key service key of spec, made once.
func (o *openers) serviceKey(ctx context.Context, spec string) (kms.Decrypter, error) {
	if d, ok := o.byKID[spec]; ok {
		return d, nil
	}
	d, err := o.ks.decrypter(ctx, spec)
	if err != nil {
		return nil, err
	}
	if o.byKID == nil {
		o.byKID = map[string]kms.Decrypter{}
	}
	o.byKID[spec] = d
	return d, nil
}

// serviceSpec returns the -r or -k argument for the key service key a kid
// names: a Cloud KMS key version or a Vault transit key.
func serviceSpec(kid string) (string, bool) {
	switch {
	case strings.HasPrefix(kid, vaultScheme):
		return kid, true
	case strings.HasPrefix(kid, "projects/") && strings.Contains(kid, "/cryptoKeyVersions/"):
		return gcpkmsScheme + kid, true
	}
	return cloudSpec(kid)
}

// publicKey returns the public key of the recipient kid: a -k key file's,
// or the key service's key version that kid names.
func (o *openers) publicKey(ctx context.Context, kid string) (jwe.PublicKey, bool, error) {
	if err := o.load(ctx); err != nil {
		return jwe.PublicKey{}, false, err
	}
	for _, k := range o.local {
		if k.KeyID() == kid {
			return jwe.PublicKey{Key: k.Public(), KeyID: kid, Algorithm: k.Algorithm()}, true, nil
		}
	}
	spec, ok := serviceSpec(kid)
	if !ok {
		return jwe.PublicKey{}, false, nil
	}
	pks, err := o.ks.resolveRecipient(ctx, spec)
	if err != nil || len(pks) != 1 {
		return jwe.PublicKey{}, false, err
	}
	return jwe.PublicKey(pks[0]), true, nil
}
