package vault

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/hashicorp/vault/api"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms"
)

// rsaBits maps the transit RSA key types to their sizes.
var rsaBits = map[string]int{"rsa-2048": 2048, "rsa-3072": 3072, "rsa-4096": 4096}

// keyInfo is what GET /v1/<mount>/keys/<key> says of a transit key.
type keyInfo struct {
	Type                 string `json:"type"`
	LatestVersion        int    `json:"latest_version"`
	MinDecryptionVersion int    `json:"min_decryption_version"`
	// Keys maps each version Vault still decrypts with to its details; for
	// asymmetric keys they hold the PEM public key.
	Keys map[string]json.RawMessage `json:"keys"`
}

// PublicKey returns the public key of the latest version of the transit key,
// with that version's key ID, to encrypt to with RSA-OAEP-256.
func (k *Key) PublicKey(ctx context.Context) (jwe.PublicKey, error) {
	return k.publicKey(ctx, 0)
}

// PublicKeyVersion returns the public key of version n (n ≥ 1) of the transit
// key, which must be one Vault still decrypts with (at least
// min_decryption_version).
func (k *Key) PublicKeyVersion(ctx context.Context, n int) (jwe.PublicKey, error) {
	if n < 1 {
		return jwe.PublicKey{}, fmt.Errorf("key version %d: versions start at 1", n)
	}
	return k.publicKey(ctx, n)
}

// PublicKeys returns the public keys of every version Vault still decrypts
// with, oldest first, each with its key ID.
func (k *Key) PublicKeys(ctx context.Context) ([]jwe.PublicKey, error) {
	info, err := k.readKey(ctx)
	if err != nil {
		return nil, err
	}
	var out []jwe.PublicKey
	for n := max(info.MinDecryptionVersion, 1); n <= info.LatestVersion; n++ {
		if _, ok := info.Keys[strconv.Itoa(n)]; !ok {
			continue
		}
		pk, err := k.versionPublicKey(info, n)
		if err != nil {
			return nil, err
		}
		out = append(out, pk)
	}
	return out, nil
}

// publicKey returns the public key of version n, or of the latest version
// when n is 0.
func (k *Key) publicKey(ctx context.Context, n int) (jwe.PublicKey, error) {
	info, err := k.readKey(ctx)
	if err != nil {
		return jwe.PublicKey{}, err
	}
	return k.versionPublicKey(info, n)
}

// versionPublicKey returns the public key of version n of the key info
// describes, or of the latest version when n is 0.
func (k *Key) versionPublicKey(info keyInfo, n int) (jwe.PublicKey, error) {
	bits, ok := rsaBits[info.Type]
	if !ok {
		return jwe.PublicKey{}, fmt.Errorf("vault: %s is a %q key, not rsa-2048, rsa-3072 or rsa-4096", k.family, info.Type)
	}
	if n == 0 {
		n = info.LatestVersion
	}
	raw, ok := info.Keys[strconv.Itoa(n)]
	if !ok {
		return jwe.PublicKey{}, fmt.Errorf("vault: %s has no version %d that decrypts (versions %d to %d)", k.family, n, info.MinDecryptionVersion, info.LatestVersion)
	}
	var version struct {
		PublicKey string `json:"public_key"`
	}
	if err := json.Unmarshal(raw, &version); err != nil || version.PublicKey == "" {
		return jwe.PublicKey{}, fmt.Errorf("vault: version %d of %s has no public key", n, k.family)
	}
	pub, err := kms.ParseRSAPublicKeyPEM(version.PublicKey, bits)
	if err != nil {
		return jwe.PublicKey{}, fmt.Errorf("vault: version %d of %s: %w", n, k.family, err)
	}
	return jwe.PublicKey{Key: pub, KeyID: KeyIDFor(k.mount, k.key, n), Algorithm: Algorithm}, nil
}

// readKey reads the transit key's details.
func (k *Key) readKey(ctx context.Context) (keyInfo, error) {
	path := k.mount + "/keys/" + k.key
	s, err := k.call(ctx, func(ctx context.Context) (*api.Secret, error) {
		return k.client.Logical().ReadWithContext(ctx, path)
	})
	if err != nil {
		return keyInfo{}, fmt.Errorf("read %s: %w", k.family, serviceError(ctx, err))
	}
	if s == nil || s.Data == nil {
		return keyInfo{}, fmt.Errorf("vault: no transit key %q on mount %q", k.key, k.mount)
	}
	// Data holds json.Numbers; a round trip through JSON types it.
	raw, err := json.Marshal(s.Data)
	if err != nil {
		return keyInfo{}, fmt.Errorf("read %s: %w", k.family, err)
	}
	var info keyInfo
	if err := json.Unmarshal(raw, &info); err != nil {
		return keyInfo{}, fmt.Errorf("read %s: unexpected answer: %w", k.family, err)
	}
	return info, nil
}
