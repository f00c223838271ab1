package local

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"slices"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwe-webhook/jwe-webhook/internal/files"
	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
)

const (
	// maxKeyFileSize caps how much of a key file LoadFile and LoadPublicFile read.
	maxKeyFileSize = 1 << 20
	minRSABits     = 2048
)

// LoadFile reads the private keys in the file at path, which may be at most
// 1 MiB, with ParsePrivateKeys.
func LoadFile(path string) ([]*Key, error) {
	return loadFile(path, ParsePrivateKeys)
}

// LoadPublicFile reads the public keys in the file at path, which may be at
// most 1 MiB, with ParsePublicKeys.
func LoadPublicFile(path string) ([]jwe.PublicKey, error) {
	return loadFile(path, ParsePublicKeys)
}

func loadFile[T any](path string, parse func([]byte) ([]T, error)) ([]T, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file %q: %w", path, err)
	}
	keys, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("key file %q: %w", path, err)
	}
	return keys, nil
}

func readFile(path string) ([]byte, error) {
	data, err := files.Read(path, maxKeyFileSize)
	return data, withoutPath(err)
}

// withoutPath drops the path from an *fs.PathError; loadFile names it already.
// A file too large is reported by its limit alone.
func withoutPath(err error) error {
	if se, ok := errors.AsType[*files.SizeError](err); ok {
		return se
	}
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}

// ParsePrivateKeys parses the private keys in data: PEM blocks ("RSA PRIVATE
// KEY", "PRIVATE KEY", "EC PRIVATE KEY"; several in a row are fine), a JWK, or
// a JWK Set. RSA keys must have at least 2048 bits and EC keys be on P-256 or
// P-384.
func ParsePrivateKeys(data []byte) ([]*Key, error) {
	return parseAll(data, newKey)
}

// ParsePublicKeys parses the public keys in data: PEM blocks ("PUBLIC KEY",
// "RSA PUBLIC KEY", "CERTIFICATE"), a JWK, or a JWK Set; of a private JWK the
// public half is used. It applies the rules of ParsePrivateKeys and gives the
// same key IDs: KeyID is the JWK's own "kid" if it named one, else the key's
// thumbprint (see KeyID), and Algorithm the JWK's "alg" if it named one, else
// "RSA-OAEP-256" for RSA and "ECDH-ES+A256KW" for EC keys.
func ParsePublicKeys(data []byte) ([]jwe.PublicKey, error) {
	return parseAll(data, newPublicKey)
}

// KeyID returns the RFC 7638 thumbprint of pub, an *rsa.PublicKey or an
// *ecdsa.PublicKey on P-256, P-384 or P-521: the unpadded base64url SHA-256 of
// its canonical JWK. It is the kid of a key whose JWK names none.
func KeyID(pub crypto.PublicKey) (string, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	var jwk []byte
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if p.N == nil || p.E <= 0 {
			return "", errors.New("invalid RSA public key")
		}
		e := big.NewInt(int64(p.E)).Bytes()
		jwk = fmt.Appendf(nil, `{"e":"%s","kty":"RSA","n":"%s"}`, b64(e), b64(p.N.Bytes()))
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() && p.Curve != elliptic.P384() && p.Curve != elliptic.P521() {
			return "", fmt.Errorf("EC curve %s has no JWK name", p.Curve.Params().Name)
		}
		point, err := p.Bytes() // 0x04 || x || y, each coordinate full length
		if err != nil {
			return "", fmt.Errorf("EC public key: %w", err)
		}
		n := (len(point) - 1) / 2
		jwk = fmt.Appendf(nil, `{"crv":"%s","kty":"EC","x":"%s","y":"%s"}`,
			p.Curve.Params().Name, b64(point[1:1+n]), b64(point[1+n:]))
	default:
		return "", unsupportedKeyType(pub)
	}
	sum := sha256.Sum256(jwk)
	return b64(sum[:]), nil
}

func unsupportedKeyType(key any) error {
	return fmt.Errorf("unsupported key type %T; need RSA, or EC on P-256 or P-384", key)
}

// parsed is one key found in the input, before it is checked.
type parsed struct {
	where   string // names the key in errors: `PEM block 1 ("PRIVATE KEY")`, `JWK 2 in set`
	pemType string // empty for a JWK
	key     any    // as x509 or go-jose returned it: private or public
	kid     string // a JWK's "kid", "alg" and "use"
	alg     string
	use     string
}

// privateKey is what the private keys of crypto have in common.
type privateKey interface {
	Public() crypto.PublicKey
}

func parseAll[T any](data []byte, check func(parsed) (T, error)) ([]T, error) {
	var keys []parsed
	var err error
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '{' {
		keys, err = parseJWKs(trimmed)
	} else {
		keys, err = parsePEM(data)
	}
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(keys))
	for _, p := range keys {
		v, err := check(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.where, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func newKey(p parsed) (*Key, error) {
	k := new(Key)
	switch priv := p.key.(type) {
	case *rsa.PrivateKey:
		k.rsa = priv
	case *ecdsa.PrivateKey:
		k.ec = priv
	case *rsa.PublicKey, *ecdsa.PublicKey:
		return nil, errors.New("holds a public key; need the private key")
	default:
		return nil, unsupportedKeyType(p.key)
	}
	pub := k.Public()
	alg, err := checkPublic(pub, p.alg, p.use)
	if err != nil {
		return nil, err
	}
	if k.ec != nil && !ecPairMatches(k.ec) {
		return nil, errors.New("invalid EC private key: public point does not match the private scalar")
	}
	kid, err := keyIDOr(p.kid, pub)
	if err != nil {
		return nil, err
	}
	k.kid, k.alg = kid, alg
	return k, nil
}

// ecPairMatches reports whether the public point of priv is the one its
// private scalar gives. A JWK carries both, and go-jose does not compare them.
func ecPairMatches(priv *ecdsa.PrivateKey) bool {
	derived, err := priv.ECDH() // from the scalar alone
	if err != nil {
		return false
	}
	pub, err := priv.PublicKey.ECDH()
	return err == nil && derived.PublicKey().Equal(pub)
}

func newPublicKey(p parsed) (jwe.PublicKey, error) {
	pub := p.key
	if priv, ok := pub.(privateKey); ok {
		if p.pemType != "" {
			return jwe.PublicKey{}, errors.New("holds a private key; give the public key")
		}
		pub = priv.Public()
	}
	alg, err := checkPublic(pub, p.alg, p.use)
	if err != nil {
		return jwe.PublicKey{}, err
	}
	kid, err := keyIDOr(p.kid, pub)
	if err != nil {
		return jwe.PublicKey{}, err
	}
	return jwe.PublicKey{Key: pub, KeyID: kid, Algorithm: alg}, nil
}

// checkPublic applies the size and curve rules to pub and returns the
// algorithm to encrypt to it with: alg, a JWK's "alg", when it fits the key,
// else the key type's default.
func checkPublic(pub crypto.PublicKey, alg, use string) (string, error) {
	var algs []string // the first is the default
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if n := p.N.BitLen(); n < minRSABits {
			return "", fmt.Errorf("RSA key of %d bits is too small; need at least %d", n, minRSABits)
		}
		algs = []string{algRSAOAEP256, algRSAOAEP}
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() && p.Curve != elliptic.P384() {
			return "", fmt.Errorf("EC curve %s is not supported; need P-256 or P-384", p.Curve.Params().Name)
		}
		algs = []string{algECDHESA256KW}
	default:
		return "", unsupportedKeyType(pub)
	}
	if use != "" && use != "enc" {
		return "", fmt.Errorf(`"use" is %q; need "enc"`, use)
	}
	if alg == "" {
		return algs[0], nil
	}
	if !slices.Contains(algs, alg) {
		return "", fmt.Errorf(`"alg" %q does not fit the key; need one of %q`, alg, algs)
	}
	return alg, nil
}

func keyIDOr(named string, pub crypto.PublicKey) (string, error) {
	if named != "" {
		return named, nil
	}
	return KeyID(pub)
}

func parseJWKs(data []byte) ([]parsed, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("JSON: %w", err)
	}
	if set.Keys == nil {
		p, err := parseJWK(data, "JWK")
		if err != nil {
			return nil, err
		}
		return []parsed{p}, nil
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("JWK Set has no keys")
	}
	keys := make([]parsed, 0, len(set.Keys))
	for i, raw := range set.Keys {
		p, err := parseJWK(raw, fmt.Sprintf("JWK %d in set", i+1))
		if err != nil {
			return nil, err
		}
		keys = append(keys, p)
	}
	return keys, nil
}

func parseJWK(data []byte, where string) (parsed, error) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(data); err != nil {
		return parsed{}, fmt.Errorf("%s: %w", where, err)
	}
	return parsed{where: where, key: jwk.Key, kid: jwk.KeyID, alg: jwk.Algorithm, use: jwk.Use}, nil
}

func parsePEM(data []byte) ([]parsed, error) {
	var keys []parsed
	rest := data
	for i := 1; ; i++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type == "EC PARAMETERS" {
			continue // openssl ecparam -genkey writes one before the key
		}
		where := fmt.Sprintf("PEM block %d (%q)", i, block.Type)
		key, err := parsePEMBlock(block)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		keys = append(keys, parsed{where: where, pemType: block.Type, key: key})
	}
	if len(keys) == 0 {
		return nil, errors.New("found no PEM key block and no JWK")
	}
	return keys, nil
}

func parsePEMBlock(b *pem.Block) (any, error) {
	if _, ok := b.Headers["Proc-Type"]; ok || b.Type == "ENCRYPTED PRIVATE KEY" {
		return nil, errors.New("encrypted keys are not supported; decrypt it first")
	}
	switch b.Type {
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(b.Bytes)
	case "PRIVATE KEY":
		return x509.ParsePKCS8PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(b.Bytes)
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(b.Bytes)
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(b.Bytes)
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		return cert.PublicKey, nil
	}
	return nil, errors.New("unsupported PEM block type")
}
