package azkv

import (
	"context"
	"crypto/rsa"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/go-jose/go-jose/v4"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms"
)

// Key is a Key Vault key version, or a key standing for every version of it.
// Build one with Client.Key. It is safe for concurrent use.
type Key struct {
	kc      *azkeys.Client
	id      string // the key's URL as configured
	prefix  string // https://VAULT/keys/NAME/
	name    string
	version string // empty for every version

	versions kms.Memo[publicKey] // by version, for the Key's lifetime
}

var (
	_ kms.Decrypter = (*Key)(nil)
)

// publicKey is a key version's answer to getKey, checked.
type publicKey struct {
	kid string
	kty azkeys.KeyType
	ops []azkeys.KeyOperation
	pub *rsa.PublicKey // nil when kty is not RSA
}

// KeyURL is a key's URL taken apart.
type KeyURL struct {
	// Vault is the vault's URL, https://VAULT.vault.azure.net.
	Vault string
	// Name is the key's name.
	Name string
	// Version is the key version, empty when the URL names every version.
	Version string
}

// String returns the URL.
func (u KeyURL) String() string {
	s := u.Vault + "/keys/" + u.Name
	if u.Version != "" {
		s += "/" + u.Version
	}
	return s
}

// keyURLShape is the shape of a key URL, for messages.
const keyURLShape = "https://VAULT.vault.azure.net/keys/NAME[/VERSION]"

// ParseKeyURL checks that s is the URL of a key
// (https://VAULT.vault.azure.net/keys/NAME) or of a key version
// (…/keys/NAME/VERSION, VERSION being 32 hexadecimal digits).
func ParseKeyURL(s string) (KeyURL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return KeyURL{}, fmt.Errorf("azure key vault: %q is not a key URL (%s)", s, keyURLShape)
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] != "keys" {
		return KeyURL{}, fmt.Errorf("azure key vault: %q is not a key URL (%s)", s, keyURLShape)
	}
	k := KeyURL{Vault: "https://" + u.Host, Name: parts[1]}
	if len(parts) == 3 {
		k.Version = parts[2]
	}
	if !validName(k.Name) {
		return KeyURL{}, fmt.Errorf("azure key vault: key URL %q: name %q is not 1 to 127 letters, digits and '-'", s, k.Name)
	}
	if len(parts) == 3 && !validVersion(k.Version) {
		return KeyURL{}, fmt.Errorf("azure key vault: key URL %q: version %q is not 32 hexadecimal digits", s, k.Version)
	}
	return k, nil
}

func validName(s string) bool {
	return len(s) >= 1 && len(s) <= 127 && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") == ""
}

func validVersion(s string) bool {
	return len(s) == 32 && strings.Trim(s, "0123456789abcdefABCDEF") == ""
}

// Key returns the key at id, a key URL (every version) or a key version URL.
// It makes no call.
func (c *Client) Key(id string) (*Key, error) {
	u, err := ParseKeyURL(id)
	if err != nil {
		return nil, err
	}
	host, _, err := net.SplitHostPort(strings.TrimPrefix(u.Vault, "https://"))
	if err != nil {
		host = strings.TrimPrefix(u.Vault, "https://")
	}
	ip := net.ParseIP(host)
	kc, err := c.keys(u.Vault, ip != nil && ip.IsLoopback())
	if err != nil {
		return nil, err
	}
	return &Key{
		kc: kc, id: u.String(), prefix: u.Vault + "/keys/" + u.Name + "/", name: u.Name, version: u.Version,
	}, nil
}

// KeyID returns the key's URL.
func (k *Key) KeyID() string { return k.id }

// MatchKeyID reports whether kid is the key's URL or, for a key, the URL of
// one of its versions.
func (k *Key) MatchKeyID(kid string) bool {
	_, ok := k.versionOf(kid)
	return kid == k.id || ok
}

// versionOf returns the version kid names when it is a version the Key
// stands for.
func (k *Key) versionOf(kid string) (string, bool) {
	v, ok := strings.CutPrefix(kid, k.prefix)
	if !ok || !validVersion(v) || (k.version != "" && v != k.version) {
		return "", false
	}
	return v, true
}

// Unwrap unwraps w's encrypted key with the key version w.KeyID names, which
// must be the Key's version or, for a key, one of its versions. The version's
// key type and operations, read once per version with getKey, must allow
// unwrapKey with an RSA key.
//
// The error wraps jwe.ErrKeyMismatch when w names another key (which is then
// not contacted) or the vault finds the ciphertext invalid. Any other error
// names the call and what the service said, and wraps ErrPermissionDenied or
// ErrUnavailable as they apply; when ctx ended first it wraps ctx.Err().
func (k *Key) Unwrap(ctx context.Context, w jwe.Recipient) ([]byte, error) {
	version, ok := k.versionOf(w.KeyID)
	if !ok {
		return nil, fmt.Errorf("azure key vault: kid %q is not a version of key %q: %w", w.KeyID, k.id, jwe.ErrKeyMismatch)
	}
	var alg azkeys.EncryptionAlgorithm
	switch w.Algorithm {
	case string(jose.RSA_OAEP_256):
		alg = azkeys.EncryptionAlgorithmRSAOAEP256
	case string(jose.RSA_OAEP):
		alg = azkeys.EncryptionAlgorithmRSAOAEP
	default:
		return nil, fmt.Errorf("azure key vault: key %q does not decrypt %q, only RSA-OAEP-256 and RSA-OAEP", w.KeyID, w.Algorithm)
	}
	pk, err := k.publicKey(ctx, version)
	if err != nil {
		return nil, err
	}
	if pk.pub == nil || !slices.Contains(pk.ops, azkeys.KeyOperationUnwrapKey) {
		return nil, fmt.Errorf("azure key vault: key %q has type %s and operations %v, which do not unwrap %q", w.KeyID, pk.kty, pk.ops, w.Algorithm)
	}
	resp, err := k.kc.UnwrapKey(ctx, k.name, version, azkeys.KeyOperationParameters{Algorithm: &alg, Value: w.EncryptedKey}, nil)
	if err != nil {
		err = newCallError(ctx, "unwrap with", w.KeyID, err)
		if isStatus(err, 400) && ctx.Err() == nil {
			// The value was encrypted to another key, or its encrypted
			// key was altered.
			return nil, fmt.Errorf("%w: %w", err, jwe.ErrKeyMismatch)
		}
		return nil, err
	}
	if resp.KID == nil || string(*resp.KID) != w.KeyID {
		clear(resp.Result)
		return nil, fmt.Errorf("azure key vault: unwrap with %q: the answer is for another key", w.KeyID)
	}
	return resp.Result, nil
}

// publicKey returns the public key of version, fetched once for the Key's
// lifetime; with version empty, the newest version's, fetched every time.
// Concurrent first calls may each fetch it.
func (k *Key) publicKey(ctx context.Context, version string) (publicKey, error) {
	if pk, ok := k.versions.Get(version); ok {
		return pk, nil
	}
	name := k.prefix + version
	resp, err := k.kc.GetKey(ctx, k.name, version, nil)
	if err != nil {
		return publicKey{}, newCallError(ctx, "get key", strings.TrimSuffix(name, "/"), err)
	}
	jwk := resp.Key
	if jwk == nil || jwk.KID == nil || jwk.Kty == nil {
		return publicKey{}, fmt.Errorf("azure key vault: get key %q: the answer has no key", name)
	}
	kid := string(*jwk.KID)
	got, ok := k.versionOf(kid)
	if !ok || (version != "" && got != version) {
		return publicKey{}, fmt.Errorf("azure key vault: get key %q: the answer is for %q", name, kid)
	}
	pk := publicKey{kid: kid, kty: *jwk.Kty}
	for _, op := range jwk.KeyOps {
		if op != nil {
			pk.ops = append(pk.ops, *op)
		}
	}
	if (pk.kty == azkeys.KeyTypeRSA || pk.kty == azkeys.KeyTypeRSAHSM) && len(jwk.N) > 0 && len(jwk.E) > 0 && len(jwk.E) <= 4 {
		pk.pub = &rsa.PublicKey{N: new(big.Int).SetBytes(jwk.N), E: int(new(big.Int).SetBytes(jwk.E).Int64())}
	}
	if resp.Attributes != nil && resp.Attributes.Enabled != nil && !*resp.Attributes.Enabled {
		return publicKey{}, fmt.Errorf("azure key vault: key %q is disabled", kid)
	}
	if version != "" {
		k.versions.Put(version, pk)
	}
	return pk, nil
}

// PublicKeys returns the public keys of every enabled version of a key,
// oldest first as the vault lists them, or of the key version; as PublicKey
// returns them. Listing versions needs the keys/read permission too.
func (k *Key) PublicKeys(ctx context.Context) ([]jwe.PublicKey, error) {
	versions := []string{k.version}
	if k.version == "" {
		var err error
		if versions, err = k.enabledVersions(ctx); err != nil {
			return nil, err
		}
	}
	return kms.PublicKeysOf(ctx, versions, k.versionPublicKey)
}

// enabledVersions lists the key's enabled versions.
func (k *Key) enabledVersions(ctx context.Context) ([]string, error) {
	var versions []string
	pager := k.kc.NewListKeyPropertiesVersionsPager(k.name, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, newCallError(ctx, "list versions of", strings.TrimSuffix(k.prefix, "/"), err)
		}
		for _, p := range page.Value {
			if p == nil || p.KID == nil || p.Attributes == nil || p.Attributes.Enabled == nil || !*p.Attributes.Enabled {
				continue
			}
			if v, ok := k.versionOf(string(*p.KID)); ok {
				versions = append(versions, v)
			}
		}
	}
	if len(versions) == 0 {
		return nil, fmt.Errorf("azure key vault: key %q has no enabled version", k.id)
	}
	return versions, nil
}

// PublicKey returns the public key to encrypt to, with the key version's URL
// as KeyID and RSA-OAEP-256 as Algorithm. For a key that is its newest
// version. A key that is not RSA, or may not unwrap, is refused.
func (k *Key) PublicKey(ctx context.Context) (jwe.PublicKey, error) {
	return k.versionPublicKey(ctx, k.version)
}

// versionPublicKey returns the public key of version, the newest when empty.
func (k *Key) versionPublicKey(ctx context.Context, version string) (jwe.PublicKey, error) {
	pk, err := k.publicKey(ctx, version)
	if err != nil {
		return jwe.PublicKey{}, err
	}
	if pk.pub == nil || !slices.Contains(pk.ops, azkeys.KeyOperationUnwrapKey) {
		return jwe.PublicKey{}, fmt.Errorf("azure key vault: key %q has type %s and operations %v, not an RSA key that may unwrapKey", pk.kid, pk.kty, pk.ops)
	}
	if bits := pk.pub.N.BitLen(); bits < 2048 {
		return jwe.PublicKey{}, fmt.Errorf("azure key vault: key %q has %d bits, fewer than 2048", pk.kid, bits)
	}
	return jwe.PublicKey{Key: pk.pub, KeyID: pk.kid, Algorithm: string(jose.RSA_OAEP_256)}, nil
}
