package jwe_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
)

// FuzzParse checks that any input is either passed over as not ours, refused
// with an error, or parsed into an object that decrypts without panicking.
// The seed corpus (testdata vectors plus testdata/fuzz) runs in every go test.
func FuzzParse(f *testing.F) {
	data, err := os.ReadFile(filepath.Join("testdata", "vectors.json"))
	if err != nil {
		f.Fatal(err)
	}
	var vectors []vector
	if err := json.Unmarshal(data, &vectors); err != nil {
		f.Fatal(err)
	}
	for _, v := range vectors {
		f.Add([]byte(v.JWE))
	}
	for _, s := range []string{
		"", "hunter2", "{}", `{"ciphertext":""}`, "....", "eyJ.....",
		compact(`{"alg":"RSA-OAEP-256","enc":"A256GCM","zip":"DEF"}`),
		jsonJWE(nil),
	} {
		f.Add([]byte(s))
	}
	keys := keys(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		detected := jwe.Detect(in)
		obj, err := jwe.Parse(in)
		if errors.Is(err, jwe.ErrNotJWE) == detected {
			t.Fatalf("Detect = %v but Parse error = %v", detected, err)
		}
		if err != nil {
			return
		}
		if len(obj.Recipients) == 0 || len(obj.Recipients) > jwe.MaxRecipients {
			t.Fatalf("parsed %d recipients", len(obj.Recipients))
		}
		_ = obj.Scope.Check("ns", "name")
		_, _, _ = obj.Decrypt(context.Background(), hold(keys["rsa-2048.pem"], keys["ec-p256.pem"], keys["ec-p384.pem"]))
	})
}
