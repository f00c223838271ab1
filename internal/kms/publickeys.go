package kms

import (
	"context"
	"fmt"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
)

// PublicKeys returns the public keys of the configured keys, ordered by key
// ID and, within a family, as its key service lists them: the key set that
// values encrypted for this keyring may name. Keys configured without
// Entry.PublicKeys are left out. Each key service call has the keyring's
// timeout; any failure fails the whole answer, as a partial key set would
// make good values look unknown.
func (r *Keyring) PublicKeys(ctx context.Context) ([]jwe.PublicKey, error) {
	var out []jwe.PublicKey
	seen := map[string]bool{}
	for _, id := range r.ids {
		e := r.keys[id]
		if e.publicKeys == nil {
			continue
		}
		pks, err := r.entryPublicKeys(ctx, e)
		if err != nil {
			return nil, fmt.Errorf("public keys of key %q (%s): %w", id, e.provider, err)
		}
		for _, pk := range pks {
			if !seen[pk.KeyID] {
				seen[pk.KeyID] = true
				out = append(out, pk)
			}
		}
	}
	return out, nil
}

func (r *Keyring) entryPublicKeys(ctx context.Context, e keyringEntry) ([]jwe.PublicKey, error) {
	if r.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	}
	return e.publicKeys(ctx)
}
