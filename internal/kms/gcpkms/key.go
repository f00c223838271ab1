package gcpkms

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"github.com/go-jose/go-jose/v4"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms"
)

// decryptAlgorithm is what a Cloud KMS decryption algorithm is in JWE terms.
type decryptAlgorithm struct {
	jwe  string // the JWE "alg" it decrypts
	bits int    // the RSA modulus size
}

// decryptAlgorithms are the Cloud KMS algorithms a JWE recipient can use.
// RSA_DECRYPT_OAEP_*_SHA512 has no JWE algorithm.
var decryptAlgorithms = map[kmspb.CryptoKeyVersion_CryptoKeyVersionAlgorithm]decryptAlgorithm{
	kmspb.CryptoKeyVersion_RSA_DECRYPT_OAEP_2048_SHA256: {string(jose.RSA_OAEP_256), 2048},
	kmspb.CryptoKeyVersion_RSA_DECRYPT_OAEP_3072_SHA256: {string(jose.RSA_OAEP_256), 3072},
	kmspb.CryptoKeyVersion_RSA_DECRYPT_OAEP_4096_SHA256: {string(jose.RSA_OAEP_256), 4096},
	kmspb.CryptoKeyVersion_RSA_DECRYPT_OAEP_2048_SHA1:   {string(jose.RSA_OAEP), 2048},
	kmspb.CryptoKeyVersion_RSA_DECRYPT_OAEP_3072_SHA1:   {string(jose.RSA_OAEP), 3072},
	kmspb.CryptoKeyVersion_RSA_DECRYPT_OAEP_4096_SHA1:   {string(jose.RSA_OAEP), 4096},
}

// Key is a Cloud KMS key version, or a crypto key standing for every version
// of it. Build one with Client.Key. It is safe for concurrent use.
type Key struct {
	c         *Client
	name      string
	isVersion bool

	versions kms.Memo[publicKey] // by version name, for the Key's lifetime
}

var (
	_ kms.Decrypter = (*Key)(nil)
)

// publicKey is a key version's answer to GetPublicKey, checked.
type publicKey struct {
	alg kmspb.CryptoKeyVersion_CryptoKeyVersionAlgorithm
	pem string
}

// Key returns the key named name: a key version
// (projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N), or a
// crypto key (…/cryptoKeys/K) meaning every version of it. It makes no call.
func (c *Client) Key(name string) (*Key, error) {
	isVersion, err := parseName(name)
	if err != nil {
		return nil, err
	}
	return &Key{c: c, name: name, isVersion: isVersion}, nil
}

// KeyID returns the key's name.
func (k *Key) KeyID() string { return k.name }

// MatchKeyID reports whether kid is the key's name or, for a crypto key, the
// name of one of its versions.
func (k *Key) MatchKeyID(kid string) bool {
	if kid == k.name {
		return true
	}
	_, ok := versionOf(k.name, kid)
	return !k.isVersion && ok
}

// Unwrap decrypts w's encrypted key with the key version w.KeyID names, which
// must be the Key's own name or, for a crypto key, one of its versions. The
// version's algorithm, read once per version with GetPublicKey, must decrypt
// w.Algorithm.
//
// The error wraps jwe.ErrKeyMismatch when w names another key or Cloud KMS
// finds the ciphertext invalid. Any other error (a version whose algorithm
// does not fit, a refused or failed call, a checksum that does not match)
// names the call and what the service said; when ctx ended first it wraps
// ctx.Err().
func (k *Key) Unwrap(ctx context.Context, w jwe.Recipient) ([]byte, error) {
	version := w.KeyID
	if !k.isVersionName(version) {
		if k.isVersion {
			return nil, fmt.Errorf("gcp kms: kid %q is not key version %q: %w", version, k.name, jwe.ErrKeyMismatch)
		}
		return nil, fmt.Errorf("gcp kms: kid %q is not a version of crypto key %q: %w", version, k.name, jwe.ErrKeyMismatch)
	}
	pk, err := k.publicKey(ctx, version)
	if err != nil {
		return nil, err
	}
	if a, ok := decryptAlgorithms[pk.alg]; !ok || a.jwe != w.Algorithm {
		return nil, fmt.Errorf("gcp kms: key version %q has algorithm %s, which does not decrypt %q", version, pk.alg, w.Algorithm)
	}
	resp, err := k.c.kms.AsymmetricDecrypt(ctx, &kmspb.AsymmetricDecryptRequest{
		Name:             version,
		Ciphertext:       w.EncryptedKey,
		CiphertextCrc32C: wrapperspb.Int64(crc32c(w.EncryptedKey)),
	}, k.c.call...)
	if err != nil {
		err = newCallError(ctx, "decrypt with", version, err)
		if status.Code(err) == codes.InvalidArgument && ctx.Err() == nil {
			// "Decryption failed": the value was encrypted to another key,
			// or its encrypted key was altered.
			return nil, fmt.Errorf("%w: %w", err, jwe.ErrKeyMismatch)
		}
		return nil, err
	}
	cek := resp.GetPlaintext()
	switch {
	case !resp.GetVerifiedCiphertextCrc32C():
		clear(cek)
		return nil, fmt.Errorf("gcp kms: decrypt with %q: Cloud KMS did not verify the ciphertext's CRC32C checksum", version)
	case resp.GetPlaintextCrc32C() == nil || resp.GetPlaintextCrc32C().GetValue() != crc32c(cek):
		clear(cek)
		return nil, fmt.Errorf("gcp kms: decrypt with %q: the plaintext does not match its CRC32C checksum", version)
	}
	return cek, nil
}

// isVersionName reports whether name is the Key's version or one of its
// crypto key's versions.
func (k *Key) isVersionName(name string) bool {
	if k.isVersion {
		return name == k.name
	}
	_, ok := versionOf(k.name, name)
	return ok
}

// publicKey returns the public key of version, fetched once for the Key's
// lifetime. Concurrent first calls may each fetch it.
func (k *Key) publicKey(ctx context.Context, version string) (publicKey, error) {
	if pk, ok := k.versions.Get(version); ok {
		return pk, nil
	}
	resp, err := k.c.kms.GetPublicKey(ctx, &kmspb.GetPublicKeyRequest{Name: version}, k.c.call...)
	if err != nil {
		return publicKey{}, newCallError(ctx, "get public key of", version, err)
	}
	switch {
	case resp.GetName() != version:
		return publicKey{}, fmt.Errorf("gcp kms: get public key of %q: the answer is for %q", version, resp.GetName())
	case resp.GetPemCrc32C() == nil || resp.GetPemCrc32C().GetValue() != crc32c([]byte(resp.GetPem())):
		return publicKey{}, fmt.Errorf("gcp kms: get public key of %q: the PEM does not match its CRC32C checksum", version)
	}
	pk := publicKey{alg: resp.GetAlgorithm(), pem: resp.GetPem()}
	k.versions.Put(version, pk)
	return pk, nil
}

// Reach asks Cloud KMS for the key's public keys, to learn whether it can be
// reached: it returns an error only when the service did not answer
// (unavailable, or not in time). Any answer, a refusal included, means it
// can be reached; Unwrap reports such refusals value by value.
func (k *Key) Reach(ctx context.Context) error {
	_, err := k.PublicKeys(ctx)
	switch code := status.Code(err); {
	case err == nil:
		return nil
	case ctx.Err() != nil, code == codes.Unavailable, code == codes.DeadlineExceeded:
		return err
	}
	return nil
}

// PublicKey returns the public key to encrypt to, with the key version's name
// as KeyID. For a crypto key that is its highest-numbered ENABLED version:
// asymmetric keys have no primary version, so PublicKey lists the versions.
// A version whose algorithm is not RSA-OAEP decryption with SHA-256 or SHA-1
// is refused.
func (k *Key) PublicKey(ctx context.Context) (jwe.PublicKey, error) {
	version := k.name
	if !k.isVersion {
		versions, err := k.enabledVersions(ctx)
		if err != nil {
			return jwe.PublicKey{}, err
		}
		version = versions[len(versions)-1]
	}
	return k.versionPublicKey(ctx, version)
}

// PublicKeys returns the public keys of every ENABLED version of a crypto
// key, oldest first, or of the key version; as PublicKey returns them.
func (k *Key) PublicKeys(ctx context.Context) ([]jwe.PublicKey, error) {
	versions := []string{k.name}
	if !k.isVersion {
		var err error
		if versions, err = k.enabledVersions(ctx); err != nil {
			return nil, err
		}
	}
	return kms.PublicKeysOf(ctx, versions, k.versionPublicKey)
}

// versionPublicKey returns the public key of a key version.
func (k *Key) versionPublicKey(ctx context.Context, version string) (jwe.PublicKey, error) {
	pk, err := k.publicKey(ctx, version)
	if err != nil {
		return jwe.PublicKey{}, err
	}
	a, ok := decryptAlgorithms[pk.alg]
	if !ok {
		return jwe.PublicKey{}, fmt.Errorf("gcp kms: key version %q has algorithm %s, not RSA_DECRYPT_OAEP_*_SHA256 (RSA-OAEP-256) or _SHA1 (RSA-OAEP)", version, pk.alg)
	}
	pub, err := kms.ParseRSAPublicKeyPEM(pk.pem, a.bits)
	if err != nil {
		return jwe.PublicKey{}, fmt.Errorf("gcp kms: public key of %q: %w", version, err)
	}
	return jwe.PublicKey{Key: pub, KeyID: version, Algorithm: a.jwe}, nil
}

// enabledVersions returns the names of the crypto key's versions in state
// ENABLED, by version number; at least one.
func (k *Key) enabledVersions(ctx context.Context) ([]string, error) {
	it := k.c.kms.ListCryptoKeyVersions(ctx, &kmspb.ListCryptoKeyVersionsRequest{
		Parent: k.name,
		Filter: "state=ENABLED",
	}, k.c.call...)
	byNumber := map[int]string{}
	for {
		v, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, newCallError(ctx, "list versions of", k.name, err)
		}
		n, ok := versionOf(k.name, v.GetName())
		if !ok {
			return nil, fmt.Errorf("gcp kms: list versions of %q: the answer lists %q", k.name, v.GetName())
		}
		if v.GetState() == kmspb.CryptoKeyVersion_ENABLED {
			byNumber[n] = v.GetName()
		}
	}
	if len(byNumber) == 0 {
		return nil, fmt.Errorf("gcp kms: crypto key %q has no enabled version", k.name)
	}
	var out []string
	for _, n := range slices.Sorted(maps.Keys(byNumber)) {
		out = append(out, byNumber[n])
	}
	return out, nil
}
