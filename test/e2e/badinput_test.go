package e2e_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"os"
	"strings"
	"testing"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/test/e2e/harness"
)

// dataKey is the data key every bad value is stored under; denials must name
// it.
const dataKey = "db.password"

// bigValueSize is the size of the largest values, 1 KiB short of 1 MiB: a
// Secret's data may hold 1 MiB in all. kubectl's client-side apply would copy
// the manifest into an annotation (limited to 256 KiB, and doubling the
// request), so these go with --server-side; the request then stays well under
// the apiserver's 3 MiB body limit and the Secret under etcd's 1.5 MiB.
const bigValueSize = 1<<20 - 1024

// The parts of a compact JWE, in order.
const (
	partHeader = iota
	partKey
	partIV
	partCiphertext
	partTag
)

// badInput builds the bad values of TestBadInput from real JWEs.
type badInput struct {
	// parts are the five parts of a compact JWE to the webhook's local key,
	// bound to namespace ns; header is its protected header.
	parts  []string
	header map[string]any
	// general is a JWE JSON serialization to the local key and an unknown
	// key, bound to ns, as a map of its members.
	general map[string]any
}

func newBadInput(t *testing.T, ns, plaintext string) *badInput {
	t.Helper()
	b := &badInput{parts: strings.Split(encrypt(t, plaintext, harness.Scope{Namespace: ns}), ".")}
	if err := json.Unmarshal(b64d(t, b.parts[partHeader]), &b.header); err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(cluster.Key.PublicFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	general, err := jwe.Encrypt([]byte(plaintext), jwe.Scope{Namespace: ns}, "",
		jwe.PublicKey{Key: &other.PublicKey, KeyID: "unknown-key"},
		jwe.PublicKey{Key: pub, KeyID: b.header["kid"].(string)})
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(general), &b.general); err != nil {
		t.Fatal(err)
	}
	return b
}

// withHeader returns the compact JWE with its protected header replaced by
// the raw bytes header.
func (b *badInput) withHeader(header string) string {
	return b64(header) + "." + strings.Join(b.parts[1:], ".")
}

// withParams returns the compact JWE with its protected header's parameters
// changed: a nil value removes one.
func (b *badInput) withParams(params map[string]any) string {
	return b.withHeader(mustJSON(edited(b.header, params)))
}

// withPart returns the compact JWE with part i replaced.
func (b *badInput) withPart(i int, part string) string {
	parts := append([]string(nil), b.parts...)
	parts[i] = part
	return strings.Join(parts, ".")
}

// jsonWith returns the JSON serialization with members changed: a nil value
// removes one.
func (b *badInput) jsonWith(members map[string]any) string {
	return mustJSON(edited(b.general, members))
}

// edited returns a copy of m with changes applied: a nil value removes a key.
func edited(m, changes map[string]any) map[string]any {
	out := maps.Clone(m)
	for k, v := range changes {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// recipients returns n copies of the JSON serialization's recipients.
func (b *badInput) recipients(n int) []any {
	var rs []any
	for len(rs) < n {
		rs = append(rs, b.general["recipients"].([]any)...)
	}
	return rs[:n]
}

// TestBadInput applies Secrets whose value is a malicious or malformed JWE,
// each with kubectl through the real apiserver: the webhook must deny it with
// a message that names the data key, gives the reason and contains neither
// the value nor the plaintext. Values that only look like JWEs are stored
// unchanged. Every case must be answered (kubectl returns), and the webhook
// must still be running and healthy afterwards.
func TestBadInput(t *testing.T) {
	ns := newNamespace(t)
	p := plaintext(t, "bad-input")
	b := newBadInput(t, ns, p)
	otherKey, err := harness.NewRSAKeyPair(t.TempDir(), "unknown")
	if err != nil {
		t.Fatal(err)
	}
	strict := func(name string) harness.Scope { return harness.Scope{Namespace: ns, Name: name} }
	ek, iv, ct, tag := b.parts[partKey], b.parts[partIV], b.parts[partCiphertext], b.parts[partTag]
	dots := strings.Repeat(".", bigValueSize)

	tests := []struct {
		name  string
		value func(name string) string
		// reason is in the denial; empty for a value that only looks like a
		// JWE and must be stored unchanged.
		reason string
		flags  []string // for kubectl apply
	}{
		// Algorithms outside the allow-lists.
		{name: "alg-rsa1-5", value: func(string) string { return b.withParams(map[string]any{"alg": "RSA1_5"}) }, reason: `key algorithm "RSA1_5" is not allowed`},
		{name: "alg-dir", value: func(string) string {
			h := b64(mustJSON(map[string]any{"alg": "dir", "enc": "A256GCM", jwe.HeaderNamespace: ns}))
			return strings.Join([]string{h, "", iv, ct, tag}, ".")
		}, reason: `key algorithm "dir" is not allowed`},
		{name: "alg-none", value: func(string) string { return b.withParams(map[string]any{"alg": "none"}) }, reason: `key algorithm "none" is not allowed`},
		{name: "alg-a128kw", value: func(string) string { return b.withParams(map[string]any{"alg": "A128KW"}) }, reason: `key algorithm "A128KW" is not allowed`},
		{name: "alg-ecdh-es-direct", value: func(string) string { return b.withParams(map[string]any{"alg": "ECDH-ES"}) }, reason: `key algorithm "ECDH-ES" is not allowed`},
		{name: "alg-pbes2-huge-p2c", value: func(string) string {
			return b.withParams(map[string]any{"alg": "PBES2-HS512+A256KW", "p2s": b64("salt-salt-salt-salt"), "p2c": 1 << 31})
		}, reason: "password-based key encryption is not allowed"},
		{name: "enc-a192gcm", value: func(string) string { return b.withParams(map[string]any{"enc": "A192GCM"}) }, reason: `content encryption "A192GCM" is not allowed`},
		{name: "enc-empty", value: func(string) string { return b.withParams(map[string]any{"enc": ""}) }, reason: `no "enc"`},
		{name: "enc-not-a-string", value: func(string) string { return b.withParams(map[string]any{"enc": 256}) }, reason: `"enc" is not a string`},
		{name: "zip", value: func(string) string { return b.withParams(map[string]any{"zip": "DEF"}) }, reason: "compression is not allowed"},
		{name: "crit", value: func(string) string { return b.withParams(map[string]any{"crit": []string{"exp"}, "exp": 1}) }, reason: "critical header extensions are not supported"},
		{name: "jku", value: func(string) string { return b.withParams(map[string]any{"jku": "https://keys.invalid/jwks"}) }, reason: "key URLs are not followed"},

		// Headers that say one thing to one parser and another to the next.
		{name: "header-duplicate-alg", value: func(string) string {
			h := mustJSON(b.header)
			return b.withHeader(h[:len(h)-1] + `,"alg":"RSA1_5"}`)
		}, reason: `has the member "alg" more than once`},
		{name: "header-non-utf8", value: func(string) string {
			h := mustJSON(b.header)
			return b.withHeader(h[:len(h)-1] + ",\"x\":\"\xff\xfe\"}")
		}, reason: "not valid JSON in UTF-8"},
		{name: "header-oversized", value: func(string) string {
			return b.withParams(map[string]any{"x": strings.Repeat("a", 10<<10)})
		}, reason: "larger than the limit"},
		{name: "header-edited", value: func(string) string { return b.withParams(map[string]any{"x": "edited"}) }, reason: "does not decrypt"},
		{name: "json-alg-in-protected-and-unprotected", value: func(string) string {
			return b.jsonWith(map[string]any{"unprotected": map[string]any{"alg": "RSA-OAEP"}, "protected": b64(mustJSON(map[string]any{
				"alg": "RSA-OAEP-256", "enc": "A256GCM", jwe.HeaderNamespace: ns,
			}))})
		}, reason: `"alg" appears in both`},
		{name: "json-scope-in-unprotected-header", value: func(string) string {
			return b.jsonWith(map[string]any{"unprotected": map[string]any{jwe.HeaderNamespace: ns}})
		}, reason: "must be in the protected header"},
		{name: "json-alg-rsa1-5-in-recipient-header", value: func(string) string {
			r := b.recipients(1)[0].(map[string]any)
			return b.jsonWith(map[string]any{"recipients": []any{map[string]any{"header": map[string]any{"alg": "RSA1_5"}, "encrypted_key": r["encrypted_key"]}}})
		}, reason: `key algorithm "RSA1_5" is not allowed`},
		{name: "json-duplicate-member", value: func(string) string {
			j := b.jsonWith(nil)
			return j[:len(j)-1] + fmt.Sprintf(`,"ciphertext":%q}`, ct)
		}, reason: `has the member "ciphertext" more than once`},
		{name: "json-unknown-member", value: func(string) string { return b.jsonWith(map[string]any{"extra": 1}) }, reason: `unknown member "extra"`},
		{name: "json-no-protected-header", value: func(string) string { return b.jsonWith(map[string]any{"protected": nil}) }, reason: `no "protected" header`},
		{name: "json-too-many-recipients", value: func(string) string {
			return b.jsonWith(map[string]any{"recipients": b.recipients(jwe.MaxRecipients + 1)})
		}, reason: "more than the limit"},
		{name: "json-empty-recipients", value: func(string) string { return b.jsonWith(map[string]any{"recipients": []any{}}) }, reason: `empty "recipients"`},

		// Broken serializations.
		{name: "four-parts", value: func(string) string { return strings.Join(b.parts[:4], ".") }, reason: "found 4"},
		{name: "six-parts", value: func(string) string { return strings.Join(b.parts, ".") + "." + tag }, reason: "found 6"},
		{name: "header-then-1mib-of-dots", value: func(string) string {
			return b.parts[partHeader] + dots[:bigValueSize-len(b.parts[partHeader])]
		}, reason: "5 parts", flags: []string{"--server-side"}},
		{name: "empty-encrypted-key", value: func(string) string { return b.withPart(partKey, "") }, reason: "encrypted key is empty"},
		{name: "empty-iv", value: func(string) string { return b.withPart(partIV, "") }, reason: "initialization vector is empty"},
		{name: "empty-tag", value: func(string) string { return b.withPart(partTag, "") }, reason: "authentication tag is empty"},
		{name: "non-base64url-character", value: func(string) string { return b.withPart(partCiphertext, "+"+ct[1:]) }, reason: "not base64url"},
		{name: "line-break-in-ciphertext", value: func(string) string { return b.withPart(partCiphertext, ct[:8]+"\n"+ct[8:]) }, reason: "not base64url"},
		{name: "padding", value: func(string) string { return b.withPart(partIV, iv+"==") }, reason: "not base64url"},

		// Well-formed values that must not open here.
		{name: "tampered-ciphertext", value: func(string) string { return b.withPart(partCiphertext, flip(ct)) }, reason: "does not decrypt"},
		{name: "tampered-tag", value: func(string) string { return b.withPart(partTag, flip(tag)) }, reason: "does not decrypt"},
		{name: "tampered-iv", value: func(string) string { return b.withPart(partIV, flip(iv)) }, reason: "does not decrypt"},
		// A modified encrypted key is answered like modified content
		// (RFC 7516 section 11.5).
		{name: "tampered-encrypted-key", value: func(string) string { return b.withPart(partKey, flip(ek)) }, reason: "does not decrypt"},
		{name: "tampered-encrypted-key-gcpkms", value: func(name string) string {
			return tamperPart(t, encryptTo(t, kmsRecipient, p, strict(name)), partKey)
		}, reason: "does not decrypt"},
		{name: "unknown-kid", value: func(name string) string {
			return encryptTo(t, otherKey.PublicFile, p, strict(name))
		}, reason: "no configured key matches"},
		{name: "unknown-kid-gcpkms", value: func(name string) string {
			return encryptTo(t, kmsUnconfiguredRecipient, p, strict(name))
		}, reason: "no configured key matches"},
		{name: "kid-limited-to-other-namespaces", value: func(name string) string {
			return encryptTo(t, kmsRestrictedRecipient, p, strict(name))
		}, reason: "may not be used in namespace"},
		{name: "scope-another-namespace", value: func(name string) string {
			return encrypt(t, p, harness.Scope{Namespace: "kube-system", Name: name})
		}, reason: `bound to namespace "kube-system"`},
		{name: "scope-another-name", value: func(string) string {
			return encrypt(t, p, strict("another-secret"))
		}, reason: `bound to Secret "another-secret"`},

		// Values that only look like JWEs.
		{name: "five-dotted-words", value: func(string) string { return "a.b.c.d.e" }},
		{name: "jws-compact", value: func(string) string {
			return b64(`{"alg":"HS256","typ":"JWT"}`) + "." + b64(`{"sub":"hr-app"}`) + "." + b64("not-a-real-signature")
		}},
		{name: "five-parts-without-enc", value: func(string) string {
			return b64(`{"alg":"RSA-OAEP-256","kid":"k"}`) + "." + strings.Join(b.parts[1:], ".")
		}},
		{name: "json-without-ciphertext", value: func(string) string { return b.jsonWith(map[string]any{"ciphertext": nil}) }},
		{name: "jws-json", value: func(string) string {
			return mustJSON(map[string]any{"payload": b64("hello"), "signatures": []any{map[string]any{"protected": b64(`{"alg":"ES256"}`), "signature": b64("sig")}}})
		}},
		{name: "eyj-prefix-garbage", value: func(string) string { return "eyJhbGciOi.x.y.z.w" }},
		{name: "1mib-of-dots", value: func(string) string { return dots }, flags: []string{"--server-side"}},
	}
	values := make([]string, len(tests))
	for i, tt := range tests {
		values[i] = tt.value(tt.name)
	}
	t.Run("cases", func(t *testing.T) {
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := newSecret(ns, tt.name)
				s.Data = map[string][]byte{dataKey: []byte(values[i])}
				err := applyGuarded(t, s, tt.flags...)
				if tt.reason == "" {
					if err != nil {
						t.Fatalf("kubectl apply of a value that is not a JWE: %v", err)
					}
					assertStored(t, ns, tt.name, map[string]string{dataKey: values[i]})
					return
				}
				msg := assertDenied(t, err, dataKey, values[i], p)
				if !strings.Contains(msg, `admission webhook "secrets.jwe-webhook.io" denied the request`) {
					t.Errorf("kubectl apply failed, but not for a denial by the webhook:\n%s", msg)
				}
				if !strings.Contains(msg, tt.reason) {
					t.Errorf("denial does not give the reason %q:\n%s", tt.reason, msg)
				}
				if _, ok := etcdValue(t, ns, tt.name); ok {
					t.Errorf("etcd has key %s, want none", harness.SecretKey(ns, tt.name))
				}
			})
		}
	})
	// Through the API too, with one call for all: only the look-alikes exist.
	stored := listSecrets(t, ns)
	for _, tt := range tests {
		if _, ok := stored[tt.name]; ok && tt.reason != "" {
			t.Errorf("secret %s/%s exists through the API, want none", ns, tt.name)
		}
	}
	if err := cluster.WebhookHealthy(t.Context()); err != nil {
		t.Errorf("webhook after the bad input: %v", err)
	}
}

// tamperPart returns the compact JWE with one character in the middle of
// part i changed, so that it still parses.
func tamperPart(t *testing.T, compact string, i int) string {
	t.Helper()
	parts := strings.Split(compact, ".")
	if len(parts) != 5 {
		t.Fatalf("not a compact JWE: %d parts", len(parts))
	}
	parts[i] = flip(parts[i])
	return strings.Join(parts, ".")
}

// flip changes the character in the middle of a base64url part (not the last,
// whose low bits may be padding).
func flip(part string) string {
	b := []byte(part)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func b64d(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only maps, slices, strings and numbers are marshalled
	}
	return string(b)
}
