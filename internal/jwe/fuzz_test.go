package jwe_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/testkit"
)

// FuzzParse checks that any input is either passed over as not ours, refused
// with an error, or parsed into an object that decrypts without panicking;
// that no error echoes the input or a part of it; and that each error wraps
// the sentinel its function documents. The seed corpus (testdata vectors
// plus testdata/fuzz) runs in every go test.
// errKeyService marks the errors of the fuzz target's key service.
var errKeyService = errors.New("key service")

// noEcho fails t when err contains the input or a part of it. Fragments
// shorter than 16 bytes are not looked for: a fuzzed part may by chance be a
// word of a fixed message ("ciphertext").
func noEcho(t *testing.T, op string, err error, in []byte) {
	t.Helper()
	if err == nil {
		return
	}
	if e := testkit.Echo(err.Error(), in, 2*testkit.MinEcho); e != "" {
		t.Fatalf("%s error contains %q from the input: %v", op, e, err)
	}
}

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
		noEcho(t, "Parse", err, in)
		if err != nil {
			return
		}
		if len(obj.Recipients) == 0 || len(obj.Recipients) > jwe.MaxRecipients {
			t.Fatalf("parsed %d recipients", len(obj.Recipients))
		}
		if err := obj.Scope.Check("ns", "name"); err != nil && !errors.Is(err, jwe.ErrScope) {
			t.Fatalf("Scope.Check error does not wrap ErrScope: %v", err)
		}
		h := hold(keys["rsa-2048.pem"], keys["ec-p256.pem"], keys["ec-p384.pem"])
		h.wrap = errKeyService
		_, _, err = obj.Decrypt(context.Background(), h)
		noEcho(t, "Decrypt", err, in)
		if err != nil && !errors.Is(err, jwe.ErrKeyMismatch) && !errors.Is(err, jwe.ErrDecrypt) && !errors.Is(err, errKeyService) {
			t.Fatalf("Decrypt error wraps neither ErrKeyMismatch, ErrDecrypt nor the key service's error: %v", err)
		}
	})
}
