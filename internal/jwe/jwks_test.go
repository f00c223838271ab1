package jwe_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/local"
)

// The JWKs written read back as the same keys, with the same kid and alg,
// and no private member.
func TestMarshalJWKS(t *testing.T) {
	ks := keys(t)
	in := []jwe.PublicKey{
		{Key: ks["rsa-2048.pem"].Public(), KeyID: "projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/3", Algorithm: "RSA-OAEP"},
		{Key: ks["ec-p384.pem"].Public(), KeyID: "vault://transit/k?version=2"},
	}
	set, err := jwe.MarshalJWKS(in...)
	if err != nil {
		t.Fatal(err)
	}
	one, err := jwe.MarshalJWK(in[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, data := range [][]byte{set, one} {
		if !json.Valid(data) {
			t.Fatalf("not JSON: %s", data)
		}
		for _, private := range []string{`"d"`, `"p"`, `"q"`} {
			if strings.Contains(string(data), private) {
				t.Fatalf("private member %s in %s", private, data)
			}
		}
	}
	got, err := local.ParsePublicKeys(set)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"RSA-OAEP", "ECDH-ES+A256KW"}
	if len(got) != 2 {
		t.Fatalf("%d keys", len(got))
	}
	for i, k := range got {
		if k.KeyID != in[i].KeyID || k.Algorithm != want[i] {
			t.Errorf("key %d: kid %q alg %q, want %q %q", i, k.KeyID, k.Algorithm, in[i].KeyID, want[i])
		}
	}
	if _, err := jwe.MarshalJWKS(jwe.PublicKey{Key: "not a key", KeyID: "x"}); err == nil {
		t.Fatal("a key of no known type was written")
	}
}
