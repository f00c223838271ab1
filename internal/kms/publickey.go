package kms

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
)

// ParseRSAPublicKeyPEM parses the PEM "PUBLIC KEY" (SubjectPublicKeyInfo) a
// key service publishes and checks that it is an RSA key of bits bits, the
// size its algorithm or key type names.
func ParseRSAPublicKeyPEM(s string, bits int) (*rsa.PublicKey, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New(`public key is not a PEM "PUBLIC KEY" block`)
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	pub, ok := key.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("public key is %T, not RSA", key)
	}
	if pub.N.BitLen() != bits {
		return nil, fmt.Errorf("public key has %d bits, its algorithm says %d", pub.N.BitLen(), bits)
	}
	return pub, nil
}

// PublicKeysOf returns the public key of each of versions, in order, as get
// returns it; the first error stops.
func PublicKeysOf(ctx context.Context, versions []string, get func(context.Context, string) (jwe.PublicKey, error)) ([]jwe.PublicKey, error) {
	out := make([]jwe.PublicKey, 0, len(versions))
	for _, v := range versions {
		pk, err := get(ctx, v)
		if err != nil {
			return nil, err
		}
		out = append(out, pk)
	}
	return out, nil
}
