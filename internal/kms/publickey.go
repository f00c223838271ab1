package kms

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
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
