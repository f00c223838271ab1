package jwe

import (
	"encoding/json"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// jwk returns key as a public JWK with its key ID, its key management
// algorithm and "use": "enc".
func jwk(key PublicKey) (jose.JSONWebKey, error) {
	alg, err := algorithmFor(key)
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("key %q: %w", key.KeyID, err)
	}
	k := jose.JSONWebKey{Key: key.Key, KeyID: key.KeyID, Algorithm: alg, Use: "enc"}
	if !k.Valid() {
		return jose.JSONWebKey{}, fmt.Errorf("key %q is not a valid public key", key.KeyID)
	}
	return k, nil
}

// MarshalJWK writes key as a public JSON Web Key (RFC 7517) with its "kid",
// its "alg" and "use": "enc", so that a value encrypted to it names the key
// as the webhook knows it.
func MarshalJWK(key PublicKey) ([]byte, error) {
	k, err := jwk(key)
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(k, "", "  ")
}

// MarshalJWKS writes keys as a JWK Set, each key as MarshalJWK writes it.
func MarshalJWKS(keys ...PublicKey) ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, key := range keys {
		k, err := jwk(key)
		if err != nil {
			return nil, err
		}
		set.Keys = append(set.Keys, k)
	}
	return json.MarshalIndent(set, "", "  ")
}
