package awskms

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/go-jose/go-jose/v4"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms"
)

// jweAlgorithms maps the AWS KMS encryption algorithms a JWE recipient can
// use to the JWE "alg" each decrypts.
var jweAlgorithms = map[types.EncryptionAlgorithmSpec]string{
	types.EncryptionAlgorithmSpecRsaesOaepSha256: string(jose.RSA_OAEP_256),
	types.EncryptionAlgorithmSpecRsaesOaepSha1:   string(jose.RSA_OAEP),
}

// keyBits are the RSA key specs and their modulus sizes.
var keyBits = map[types.KeySpec]int{
	types.KeySpecRsa2048: 2048,
	types.KeySpecRsa3072: 3072,
	types.KeySpecRsa4096: 4096,
}

// Key is an AWS KMS asymmetric key, named by its key ARN. Build one with
// Client.Key. It is safe for concurrent use.
type Key struct {
	c      *Client
	arn    string
	region string

	mu  sync.Mutex
	pub *publicKey // once fetched, for the Key's lifetime
}

var (
	_ kms.Decrypter = (*Key)(nil)
)

// publicKey is a key's answer to GetPublicKey, checked.
type publicKey struct {
	arn   string
	spec  types.KeySpec
	usage types.KeyUsageType
	algs  []types.EncryptionAlgorithmSpec
	der   []byte
}

// ARN shape, for messages.
const arnShape = "arn:PARTITION:kms:REGION:ACCOUNT:key/KEY-ID"

// ParseKeyARN checks that arn is a key ARN and returns its region.
func ParseKeyARN(arn string) (region string, err error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "kms" {
		return "", fmt.Errorf("aws kms: %q is not a key ARN (%s)", arn, arnShape)
	}
	partition, region, account, resource := parts[1], parts[3], parts[4], parts[5]
	id, isKey := strings.CutPrefix(resource, "key/")
	switch {
	case strings.HasPrefix(resource, "alias/"):
		return "", fmt.Errorf("aws kms: %q is an alias ARN; name the key ARN it points to (jwe-encrypt -r awskms://ALIAS-ARN prints it)", arn)
	case !isKey:
		return "", fmt.Errorf("aws kms: %q is not a key ARN (%s)", arn, arnShape)
	case !validName(partition) || !validName(region):
		return "", fmt.Errorf("aws kms: key ARN %q: partition and region must be lowercase letters, digits and '-'", arn)
	case len(account) != 12 || strings.Trim(account, "0123456789") != "":
		return "", fmt.Errorf("aws kms: key ARN %q: account %q is not 12 digits", arn, account)
	case id == "" || strings.IndexFunc(id, func(r rune) bool {
		return r > unicode.MaxASCII || !(r == '-' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
	}) >= 0:
		return "", fmt.Errorf("aws kms: key ARN %q: key ID %q is empty or has characters other than letters, digits and '-'", arn, id)
	}
	return region, nil
}

func validName(s string) bool {
	return s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
}

// Key returns the key named by arn, a key ARN
// (arn:aws:kms:REGION:ACCOUNT:key/KEY-ID). It makes no call.
func (c *Client) Key(arn string) (*Key, error) {
	region, err := ParseKeyARN(arn)
	if err != nil {
		return nil, err
	}
	return &Key{c: c, arn: arn, region: region}, nil
}

// KeyID returns the key ARN.
func (k *Key) KeyID() string { return k.arn }

// MatchKeyID reports whether kid is the key ARN: an AWS KMS key has no
// versions, and an alias is never a kid.
func (k *Key) MatchKeyID(kid string) bool { return kid == k.arn }

// inRegion makes a call go to the key's region.
func (k *Key) inRegion(o *awskms.Options) { o.Region = k.region }

// Unwrap decrypts w's encrypted key with the key, which w.KeyID must name by
// its ARN. The key's algorithms, read once with GetPublicKey, must include
// the one w.Algorithm stands for.
//
// The error wraps jwe.ErrKeyMismatch when w names another key or AWS KMS
// finds the ciphertext invalid (it was encrypted to another key, or altered).
// Any other error names the call and what the service said, and wraps
// ErrPermissionDenied or ErrUnavailable as they apply; when ctx ended first
// it wraps ctx.Err().
func (k *Key) Unwrap(ctx context.Context, w jwe.Recipient) ([]byte, error) {
	if w.KeyID != k.arn {
		return nil, fmt.Errorf("aws kms: kid %q is not key %q: %w", w.KeyID, k.arn, jwe.ErrKeyMismatch)
	}
	pk, err := k.publicKey(ctx)
	if err != nil {
		return nil, err
	}
	alg, err := pk.algorithmFor(w.Algorithm)
	if err != nil {
		return nil, err
	}
	resp, err := k.c.kms.Decrypt(ctx, &awskms.DecryptInput{
		KeyId:               aws.String(k.arn),
		CiphertextBlob:      w.EncryptedKey,
		EncryptionAlgorithm: alg,
	}, k.inRegion)
	if err != nil {
		err = newCallError(ctx, "decrypt with", k.arn, err)
		if isAPIError(err, "InvalidCiphertextException", "IncorrectKeyException") && ctx.Err() == nil {
			return nil, fmt.Errorf("%w: %w", err, jwe.ErrKeyMismatch)
		}
		return nil, err
	}
	if got := aws.ToString(resp.KeyId); got != k.arn {
		clear(resp.Plaintext)
		return nil, fmt.Errorf("aws kms: decrypt with %q: the answer is for key %q", k.arn, got)
	}
	return resp.Plaintext, nil
}

// algorithmFor returns the key's encryption algorithm for the JWE alg.
func (pk *publicKey) algorithmFor(alg string) (types.EncryptionAlgorithmSpec, error) {
	for _, a := range pk.algs {
		if jweAlgorithms[a] == alg {
			return a, nil
		}
	}
	return "", fmt.Errorf("aws kms: key %q (%s, %s) has algorithms %v, none of which decrypts %q",
		pk.arn, pk.spec, pk.usage, pk.algs, alg)
}

// publicKey returns the key's public key, fetched once for the Key's
// lifetime. Concurrent first calls may each fetch it.
func (k *Key) publicKey(ctx context.Context) (*publicKey, error) {
	k.mu.Lock()
	pk := k.pub
	k.mu.Unlock()
	if pk != nil {
		return pk, nil
	}
	pk, err := k.c.getPublicKey(ctx, k.arn, k.inRegion)
	if err != nil {
		return nil, err
	}
	if pk.arn != k.arn {
		return nil, fmt.Errorf("aws kms: get public key of %q: the answer is for key %q", k.arn, pk.arn)
	}
	k.mu.Lock()
	k.pub = pk
	k.mu.Unlock()
	return pk, nil
}

// getPublicKey calls GetPublicKey on ref: a key ARN, an alias ARN, an alias
// name or a key ID.
func (c *Client) getPublicKey(ctx context.Context, ref string, opts ...func(*awskms.Options)) (*publicKey, error) {
	resp, err := c.kms.GetPublicKey(ctx, &awskms.GetPublicKeyInput{KeyId: aws.String(ref)}, opts...)
	if err != nil {
		return nil, newCallError(ctx, "get public key of", ref, err)
	}
	arn := aws.ToString(resp.KeyId)
	if _, err := ParseKeyARN(arn); err != nil {
		return nil, fmt.Errorf("aws kms: get public key of %q: the answer names no key ARN: %w", ref, err)
	}
	return &publicKey{arn: arn, spec: resp.KeySpec, usage: resp.KeyUsage, algs: resp.EncryptionAlgorithms, der: resp.PublicKey}, nil
}

// PublicKey returns the public key to encrypt to, with the key ARN as KeyID
// and RSA-OAEP-256 as Algorithm (RSA-OAEP when the key offers only SHA-1).
func (k *Key) PublicKey(ctx context.Context) (jwe.PublicKey, error) {
	pk, err := k.publicKey(ctx)
	if err != nil {
		return jwe.PublicKey{}, err
	}
	return pk.toPublicKey()
}

// PublicKey returns the public key of ref (a key ARN, an alias ARN, an alias
// name such as "alias/hr" or a key ID) with the ARN of the key it names as
// KeyID: an alias is resolved, and the kid never names it. Names other than
// ARNs are looked up in the client's default region.
func (c *Client) PublicKey(ctx context.Context, ref string) (jwe.PublicKey, error) {
	var opts []func(*awskms.Options)
	if strings.HasPrefix(ref, "arn:") {
		parts := strings.SplitN(ref, ":", 6)
		if len(parts) != 6 || parts[2] != "kms" || !validName(parts[3]) {
			return jwe.PublicKey{}, fmt.Errorf("aws kms: %q is not a key or alias ARN", ref)
		}
		opts = append(opts, func(o *awskms.Options) { o.Region = parts[3] })
	}
	pk, err := c.getPublicKey(ctx, ref, opts...)
	if err != nil {
		return jwe.PublicKey{}, err
	}
	return pk.toPublicKey()
}

// toPublicKey checks that pk is an RSA decryption key and parses it.
func (pk *publicKey) toPublicKey() (jwe.PublicKey, error) {
	bits, ok := keyBits[pk.spec]
	if !ok || pk.usage != types.KeyUsageTypeEncryptDecrypt {
		return jwe.PublicKey{}, fmt.Errorf("aws kms: key %q is %s with usage %s, not RSA_2048/3072/4096 with usage ENCRYPT_DECRYPT", pk.arn, pk.spec, pk.usage)
	}
	alg := ""
	for _, a := range []types.EncryptionAlgorithmSpec{types.EncryptionAlgorithmSpecRsaesOaepSha256, types.EncryptionAlgorithmSpecRsaesOaepSha1} {
		if slices.Contains(pk.algs, a) {
			alg = jweAlgorithms[a]
			break
		}
	}
	if alg == "" {
		return jwe.PublicKey{}, fmt.Errorf("aws kms: key %q has algorithms %v, not RSAES_OAEP_SHA_256 (RSA-OAEP-256) or RSAES_OAEP_SHA_1 (RSA-OAEP)", pk.arn, pk.algs)
	}
	key, err := x509.ParsePKIXPublicKey(pk.der)
	if err != nil {
		return jwe.PublicKey{}, fmt.Errorf("aws kms: public key of %q: %w", pk.arn, err)
	}
	pub, ok := key.(*rsa.PublicKey)
	if !ok || pub.N.BitLen() != bits {
		return jwe.PublicKey{}, fmt.Errorf("aws kms: public key of %q is not the %d-bit RSA key its spec %s says", pk.arn, bits, pk.spec)
	}
	return jwe.PublicKey{Key: pub, KeyID: pk.arn, Algorithm: alg}, nil
}

// PublicKeys returns the key's public key, as PublicKey does: an AWS KMS key
// has one.
func (k *Key) PublicKeys(ctx context.Context) ([]jwe.PublicKey, error) {
	pk, err := k.PublicKey(ctx)
	if err != nil {
		return nil, err
	}
	return []jwe.PublicKey{pk}, nil
}
