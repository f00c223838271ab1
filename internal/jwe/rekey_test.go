package jwe_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/local"
)

// contentParts returns the members of a JSON-serialized JWE that hold the
// content: adding a recipient must not change them.
func contentParts(t *testing.T, v string) map[string]string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(v), &m); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, k := range []string{"protected", "iv", "ciphertext", "tag"} {
		s, _ := m[k].(string)
		if s == "" {
			t.Fatalf("no %q in %s", k, v)
		}
		out[k] = s
	}
	return out
}

// flattened is a JWE JSON serialization with one recipient in the flattened
// form, as another tool may write it: the first recipient of two, with the
// second left out.
func flattened(t *testing.T, k *local.Key) string {
	t.Helper()
	two, err := jwe.Encrypt([]byte("s3cret"), jwe.Scope{Namespace: "hr", Name: "db"}, "A128CBC-HS256", publicKey(k, ""), publicKey(k, "RSA-OAEP"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(two), &m); err != nil {
		t.Fatal(err)
	}
	var rs []map[string]json.RawMessage
	if err := json.Unmarshal(m["recipients"], &rs); err != nil {
		t.Fatal(err)
	}
	delete(m, "recipients")
	m["header"], m["encrypted_key"] = rs[0]["header"], rs[0]["encrypted_key"]
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAddRecipients(t *testing.T) {
	ks := keys(t)
	a, b, c, d := ks["rsa-2048.pem"], ks["ec-p256.pem"], ks["ec-p384.pem"], ks["rsa-2048-other.pem"]
	general, err := jwe.Encrypt([]byte("s3cret"), jwe.Scope{Namespace: "hr", Name: "db"}, "A128CBC-HS256", publicKey(a, ""), publicKey(b, ""))
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string]string{"general": general, "flattened": flattened(t, a)} {
		t.Run(name, func(t *testing.T) {
			obj, err := jwe.Parse([]byte(in))
			if err != nil {
				t.Fatal(err)
			}
			out, err := obj.AddRecipients(context.Background(), hold(a), publicKey(c, ""), publicKey(d, "RSA-OAEP"))
			if err != nil {
				t.Fatal(err)
			}
			before, after := contentParts(t, in), contentParts(t, out)
			for k, v := range before {
				if after[k] != v {
					t.Errorf("%s changed: content was encrypted again", k)
				}
			}
			got, err := jwe.Parse([]byte(out))
			if err != nil {
				t.Fatal(err)
			}
			if n := len(got.Recipients); n != len(obj.Recipients)+2 {
				t.Fatalf("%d recipients, want %d", n, len(obj.Recipients)+2)
			}
			if got.Scope != obj.Scope || got.Encryption != "A128CBC-HS256" {
				t.Fatalf("scope %v enc %q", got.Scope, got.Encryption)
			}
			for _, k := range []*local.Key{a, c, d} {
				pt, used, err := got.Decrypt(context.Background(), hold(k))
				if err != nil || string(pt) != "s3cret" || used.KeyID != k.KeyID() {
					t.Fatalf("with %s: %q %q %v", k.KeyID(), pt, used.KeyID, err)
				}
			}
		})
	}
}

func TestAddRecipientsRefuses(t *testing.T) {
	ks := keys(t)
	a, b := ks["rsa-2048.pem"], ks["ec-p256.pem"]
	compact, err := jwe.Encrypt([]byte("s3cret"), jwe.Scope{}, "", publicKey(a, ""))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := jwe.Parse([]byte(compact))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obj.AddRecipients(context.Background(), hold(a), publicKey(b, "")); !errors.Is(err, jwe.ErrCannotAdd) {
		t.Fatalf("compact: got %v, want ErrCannotAdd", err)
	}
	two, err := jwe.Encrypt([]byte("s3cret"), jwe.Scope{}, "", publicKey(a, ""), publicKey(b, ""))
	if err != nil {
		t.Fatal(err)
	}
	obj, err = jwe.Parse([]byte(two))
	if err != nil {
		t.Fatal(err)
	}
	// Without a key that opens it there is no content key to wrap.
	if _, err := obj.AddRecipients(context.Background(), hold(ks["rsa-2048-other.pem"]), publicKey(b, "")); !errors.Is(err, jwe.ErrKeyMismatch) {
		t.Fatalf("no key: got %v, want ErrKeyMismatch", err)
	}
	// A key that is not allowed is refused before anything is written.
	if _, err := obj.AddRecipients(context.Background(), hold(a), jwe.PublicKey{Key: a.Public(), KeyID: "x", Algorithm: "RSA1_5"}); err == nil {
		t.Fatal("RSA1_5 recipient accepted")
	}
}

func TestReencrypt(t *testing.T) {
	ks := keys(t)
	a, b := ks["rsa-2048.pem"], ks["ec-p384.pem"]
	in, err := jwe.Encrypt([]byte("s3cret"), jwe.Scope{Namespace: "hr"}, "A256CBC-HS512", publicKey(a, ""))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := jwe.Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.Reencrypt(context.Background(), hold(a), publicKey(b, ""))
	if err != nil {
		t.Fatal(err)
	}
	got, err := jwe.Parse([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if got.Scope != obj.Scope || got.Encryption != "A256CBC-HS512" || len(got.Recipients) != 1 || got.Recipients[0].KeyID != b.KeyID() {
		t.Fatalf("scope %v enc %q kids %q", got.Scope, got.Encryption, got.KeyIDs())
	}
	if _, _, err := got.Decrypt(context.Background(), hold(a)); !errors.Is(err, jwe.ErrKeyMismatch) {
		t.Fatalf("the removed key still opens it: %v", err)
	}
	if pt, _, err := got.Decrypt(context.Background(), hold(b)); err != nil || string(pt) != "s3cret" {
		t.Fatalf("new key: %q %v", pt, err)
	}
	if _, err := obj.Reencrypt(context.Background(), hold(b), publicKey(b, "")); !errors.Is(err, jwe.ErrKeyMismatch) {
		t.Fatalf("without a key: got %v", err)
	}
}
