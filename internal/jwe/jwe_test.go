package jwe_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/local"
	"github.com/jwe-webhook/jwe-webhook/internal/testkit"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json (breaks compatibility checks: only for new vectors)")

// keys are the private keys in testdata, by file name.
func keys(t testing.TB) map[string]*local.Key {
	t.Helper()
	out := map[string]*local.Key{}
	for _, name := range []string{"rsa-2048.pem", "rsa-2048-other.pem", "ec-p256.pem", "ec-p384.pem"} {
		ks, err := local.LoadFile(filepath.Join("testdata", name))
		if err != nil || len(ks) != 1 {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = ks[0]
	}
	return out
}

// holder is a KeyUnwrapper holding some keys, as the keyring does.
type holder struct {
	keys  map[string]*local.Key
	calls int
	wrap  error // when set, wrapped by every error other than ErrKeyMismatch
}

func hold(ks ...*local.Key) *holder {
	h := &holder{keys: map[string]*local.Key{}}
	for _, k := range ks {
		h.keys[k.KeyID()] = k
	}
	return h
}

func (h *holder) Unwrap(ctx context.Context, r jwe.Recipient) ([]byte, error) {
	h.calls++
	k, ok := h.keys[r.KeyID]
	if !ok {
		return nil, fmt.Errorf("%w: kid %q", jwe.ErrKeyMismatch, r.KeyID)
	}
	cek, err := k.Unwrap(ctx, r)
	if err != nil && !errors.Is(err, jwe.ErrKeyMismatch) && h.wrap != nil {
		return nil, fmt.Errorf("%w: %w", h.wrap, err)
	}
	return cek, err
}

func publicKey(k *local.Key, alg string) jwe.PublicKey {
	return jwe.PublicKey{Key: k.Public(), KeyID: k.KeyID(), Algorithm: alg}
}

// keyFor picks a testdata key for an algorithm.
func keyFor(ks map[string]*local.Key, alg jose.KeyAlgorithm, variant int) *local.Key {
	if alg == jose.ECDH_ES_A256KW {
		return ks[[]string{"ec-p256.pem", "ec-p384.pem"}[variant%2]]
	}
	return ks["rsa-2048.pem"]
}

func TestRoundTrip(t *testing.T) {
	ks := keys(t)
	scopes := []jwe.Scope{{}, {Namespace: "team-a"}, {Namespace: "team-a", Name: "db"}}
	for _, alg := range jwe.KeyAlgorithms {
		for _, enc := range jwe.ContentEncryptions {
			for variant := range 2 {
				k := keyFor(ks, alg, variant)
				scope := scopes[(len(alg)+len(enc)+variant)%len(scopes)]
				t.Run(fmt.Sprintf("%s/%s/%d", alg, enc, variant), func(t *testing.T) {
					plaintext := []byte("s3cr3t-" + string(alg) + string(enc))
					out, err := jwe.Encrypt(plaintext, scope, string(enc), publicKey(k, string(alg)))
					if err != nil {
						t.Fatal(err)
					}
					if strings.Count(out, ".") != 4 {
						t.Fatalf("one recipient should give the compact serialization, got %.40q", out)
					}
					obj, err := jwe.Parse([]byte(out))
					if err != nil {
						t.Fatal(err)
					}
					if obj.Encryption != string(enc) || obj.Scope != scope || obj.Serialization != jwe.Compact {
						t.Fatalf("parsed enc %q scope %v serialization %q", obj.Encryption, obj.Scope, obj.Serialization)
					}
					if len(obj.Recipients) != 1 || obj.Recipients[0].KeyID != k.KeyID() || obj.Recipients[0].Algorithm != string(alg) {
						t.Fatalf("recipients %+v", obj.Recipients)
					}
					got, used, err := obj.Decrypt(context.Background(), hold(k))
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, plaintext) || used.KeyID != k.KeyID() {
						t.Fatalf("got %q via %q", got, used.KeyID)
					}
				})
			}
		}
	}
}

type vector struct {
	Name      string `json:"name"`
	Key       string `json:"key"`
	Scope     jwe.Scope
	JWE       string `json:"jwe"`
	Plaintext string `json:"plaintext"`
}

// TestVectors decrypts values encrypted once and checked in, so a change that
// can no longer read values already committed to git fails here.
func TestVectors(t *testing.T) {
	ks := keys(t)
	path := filepath.Join("testdata", "vectors.json")
	if *update {
		writeVectors(t, ks, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var vectors []vector
	if err := json.Unmarshal(data, &vectors); err != nil {
		t.Fatal(err)
	}
	if len(vectors) < len(jwe.KeyAlgorithms)*len(jwe.ContentEncryptions) {
		t.Fatalf("only %d vectors", len(vectors))
	}
	for _, v := range vectors {
		t.Run(v.Name, func(t *testing.T) {
			obj, err := jwe.Parse([]byte(v.JWE))
			if err != nil {
				t.Fatal(err)
			}
			if obj.Scope != v.Scope {
				t.Errorf("scope %v, want %v", obj.Scope, v.Scope)
			}
			got, _, err := obj.Decrypt(context.Background(), hold(ks[v.Key]))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != v.Plaintext {
				t.Fatalf("got %q, want %q", got, v.Plaintext)
			}
		})
	}
}

func writeVectors(t *testing.T, ks map[string]*local.Key, path string) {
	var vectors []vector
	for _, alg := range jwe.KeyAlgorithms {
		for i, enc := range jwe.ContentEncryptions {
			name := "rsa-2048.pem"
			if alg == jose.ECDH_ES_A256KW {
				name = []string{"ec-p256.pem", "ec-p384.pem"}[i%2]
			}
			scope := jwe.Scope{Namespace: "vectors", Name: fmt.Sprintf("v%d", i)}
			pt := fmt.Sprintf("plaintext for %s with %s", alg, enc)
			out, err := jwe.Encrypt([]byte(pt), scope, string(enc), publicKey(ks[name], string(alg)))
			if err != nil {
				t.Fatal(err)
			}
			vectors = append(vectors, vector{Name: string(alg) + "/" + string(enc), Key: name, Scope: scope, JWE: out, Plaintext: pt})
		}
	}
	multi, err := jwe.Encrypt([]byte("one value, two clusters"), jwe.Scope{Namespace: "vectors"}, "",
		publicKey(ks["rsa-2048-other.pem"], ""), publicKey(ks["ec-p256.pem"], ""))
	if err != nil {
		t.Fatal(err)
	}
	vectors = append(vectors, vector{Name: "json/two-recipients", Key: "ec-p256.pem", Scope: jwe.Scope{Namespace: "vectors"}, JWE: multi, Plaintext: "one value, two clusters"})
	data, _ := json.MarshalIndent(vectors, "", "  ")
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestMultiRecipient(t *testing.T) {
	ks := keys(t)
	a, b := ks["rsa-2048.pem"], ks["ec-p384.pem"]
	out, err := jwe.Encrypt([]byte("shared"), jwe.Scope{Namespace: "ns"}, "", publicKey(a, ""), publicKey(b, ""))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := jwe.Parse([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if obj.Serialization != jwe.JSON || len(obj.Recipients) != 2 {
		t.Fatalf("serialization %q with %d recipients", obj.Serialization, len(obj.Recipients))
	}
	if ids := obj.KeyIDs(); len(ids) != 2 || ids[0] != a.KeyID() || ids[1] != b.KeyID() {
		t.Fatalf("kids %q", ids)
	}
	for _, k := range []*local.Key{a, b} {
		got, used, err := obj.Decrypt(context.Background(), hold(k))
		if err != nil || string(got) != "shared" || used.KeyID != k.KeyID() {
			t.Fatalf("with %s: %q %q %v", k.KeyID(), got, used.KeyID, err)
		}
	}
	_, _, err = obj.Decrypt(context.Background(), hold(ks["rsa-2048-other.pem"]))
	if !errors.Is(err, jwe.ErrKeyMismatch) {
		t.Fatalf("no matching key: got %v", err)
	}
}

// failing is a key service that is down.
type failing struct{ calls int }

var errDown = errors.New("key service unavailable")

func (f *failing) Unwrap(context.Context, jwe.Recipient) ([]byte, error) {
	f.calls++
	return nil, errDown
}

func TestKeyServiceFailureStopsDecrypt(t *testing.T) {
	ks := keys(t)
	out, err := jwe.Encrypt([]byte("x"), jwe.Scope{}, "", publicKey(ks["rsa-2048.pem"], ""), publicKey(ks["ec-p256.pem"], ""))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := jwe.Parse([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	f := &failing{}
	_, _, err = obj.Decrypt(context.Background(), f)
	if !errors.Is(err, errDown) || errors.Is(err, jwe.ErrKeyMismatch) {
		t.Fatalf("got %v", err)
	}
	if f.calls != 1 {
		t.Fatalf("a failed key service must stop the search; asked %d times", f.calls)
	}
}

func TestTampered(t *testing.T) {
	ks := keys(t)
	k := ks["rsa-2048.pem"]
	plaintext := []byte("do-not-leak-0xC0FFEE")
	out, err := jwe.Encrypt(plaintext, jwe.Scope{Namespace: "prod", Name: "db"}, "", publicKey(k, ""))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(out, ".")
	flip := func(i int) string {
		b, _ := base64.RawURLEncoding.DecodeString(parts[i])
		b[len(b)/2] ^= 1
		p := append([]string(nil), parts...)
		p[i] = base64.RawURLEncoding.EncodeToString(b)
		return strings.Join(p, ".")
	}
	rescoped := func() string {
		h, _ := base64.RawURLEncoding.DecodeString(parts[0])
		h = bytes.Replace(h, []byte(`"prod"`), []byte(`"dev"`), 1)
		p := append([]string(nil), parts...)
		p[0] = base64.RawURLEncoding.EncodeToString(h)
		return strings.Join(p, ".")
	}
	cases := map[string]struct {
		in   string
		want error
	}{
		"ciphertext":        {flip(3), jwe.ErrDecrypt},
		"tag":               {flip(4), jwe.ErrDecrypt},
		"iv":                {flip(2), jwe.ErrDecrypt},
		"encrypted key":     {flip(1), jwe.ErrKeyMismatch},
		"scope rewritten":   {rescoped(), jwe.ErrDecrypt},
		"other private key": {out, jwe.ErrKeyMismatch},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			obj, err := jwe.Parse([]byte(c.in))
			if err != nil {
				t.Fatal(err)
			}
			u := hold(k)
			if name == "other private key" {
				other := ks["rsa-2048-other.pem"]
				u = &holder{keys: map[string]*local.Key{k.KeyID(): other}}
			}
			got, _, err := obj.Decrypt(context.Background(), u)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if got != nil || strings.Contains(err.Error(), string(plaintext)) {
				t.Fatalf("leaked plaintext: %q / %v", got, err)
			}
		})
	}
}

func TestScopeCheck(t *testing.T) {
	cases := []struct {
		scope     jwe.Scope
		ns, name  string
		wantError bool
	}{
		{jwe.Scope{}, "any", "thing", false},
		{jwe.Scope{Namespace: "a"}, "a", "x", false},
		{jwe.Scope{Namespace: "a"}, "b", "x", true},
		{jwe.Scope{Namespace: "a", Name: "s"}, "a", "s", false},
		{jwe.Scope{Namespace: "a", Name: "s"}, "a", "t", true},
		{jwe.Scope{Namespace: "a", Name: "s"}, "b", "s", true},
		{jwe.Scope{Namespace: "a", Name: "s"}, "a", "", true},
	}
	for _, c := range cases {
		err := c.scope.Check(c.ns, c.name)
		if (err != nil) != c.wantError {
			t.Errorf("%v in %s/%s: %v", c.scope, c.ns, c.name, err)
		}
		if err != nil && !errors.Is(err, jwe.ErrScope) {
			t.Errorf("%v: error %v does not wrap ErrScope", c.scope, err)
		}
	}
	if got := (jwe.Scope{Namespace: "a", Name: "s"}).Kind(); got != "strict" {
		t.Errorf("kind %q", got)
	}
}

func TestNotOurs(t *testing.T) {
	for _, v := range []string{
		"",
		"hunter2",
		"a.b.c.d.e",
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", // a JWS
		`{"user":"admin","password":"x"}`,
		"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
		"\xff\xfe\x00binary",
		"postgres://u:p@db:5432/app?sslmode=require",
		b64(`{"alg":"RSA-OAEP-256"}`) + ".a.b.c.d", // a header without "enc" is no JWE
	} {
		if jwe.Detect([]byte(v)) {
			t.Errorf("Detect(%q) = true", v)
		}
		if _, err := jwe.Parse([]byte(v)); !errors.Is(err, jwe.ErrNotJWE) {
			t.Errorf("Parse(%q) = %v, want ErrNotJWE", v, err)
		}
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// compact builds a compact JWE from a header and placeholder parts.
func compact(header string) string {
	return b64(header) + "." + b64("encrypted-key") + "." + b64("iv-iv-iv-iv!") + "." + b64("ciphertext") + "." + b64("tag-tag-tag-tag!")
}

// jsonJWE builds a JSON serialization from member overrides.
func jsonJWE(members map[string]any) string {
	m := map[string]any{
		"protected":  b64(`{"enc":"A256GCM"}`),
		"iv":         b64("iv-iv-iv-iv!"),
		"ciphertext": b64("ciphertext"),
		"tag":        b64("tag-tag-tag-tag!"),
		"recipients": []any{map[string]any{"header": map[string]any{"alg": "RSA-OAEP-256", "kid": "k1"}, "encrypted_key": b64("ek")}},
	}
	for k, v := range members {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func TestRejected(t *testing.T) {
	ok := `{"alg":"RSA-OAEP-256","enc":"A256GCM","kid":"k1"}`
	huge := `{"alg":"RSA-OAEP-256","enc":"A256GCM","pad":"` + strings.Repeat("x", jwe.MaxHeaderSize) + `"}`
	many := make([]any, jwe.MaxRecipients+1)
	for i := range many {
		many[i] = map[string]any{"header": map[string]any{"alg": "RSA-OAEP-256"}, "encrypted_key": b64("ek")}
	}
	cases := []struct {
		name, in, want string
	}{
		{"RSA1_5", compact(`{"alg":"RSA1_5","enc":"A256GCM"}`), `key algorithm "RSA1_5" is not allowed`},
		{"dir", compact(`{"alg":"dir","enc":"A256GCM"}`), `key algorithm "dir" is not allowed`},
		{"none", compact(`{"alg":"none","enc":"A256GCM"}`), `key algorithm "none" is not allowed`},
		{"A128KW", compact(`{"alg":"A128KW","enc":"A256GCM"}`), `key algorithm "A128KW" is not allowed`},
		{"PBES2 huge p2c", compact(`{"alg":"PBES2-HS256+A128KW","enc":"A256GCM","p2c":2000000000,"p2s":"c2FsdA"}`), `password-based key encryption is not allowed`},
		{"PBES2", compact(`{"alg":"PBES2-HS512+A256KW","enc":"A256GCM"}`), `is not allowed`},
		{"ECDH-ES direct", compact(`{"alg":"ECDH-ES","enc":"A256GCM"}`), `key algorithm "ECDH-ES" is not allowed`},
		{"A192GCM", compact(`{"alg":"RSA-OAEP-256","enc":"A192GCM"}`), `content encryption "A192GCM" is not allowed`},
		{"zip", compact(`{"alg":"RSA-OAEP-256","enc":"A256GCM","zip":"DEF"}`), `compression is not allowed`},
		{"crit", compact(`{"alg":"RSA-OAEP-256","enc":"A256GCM","crit":["exp"],"exp":1}`), `critical header extensions`},
		{"jku", compact(`{"alg":"RSA-OAEP-256","enc":"A256GCM","jku":"https://evil"}`), `key URLs are not followed`},
		{"alg not a string", compact(`{"alg":7,"enc":"A256GCM"}`), `"alg" is not a string`},
		{"duplicate alg", compact(`{"alg":"RSA-OAEP-256","alg":"dir","enc":"A256GCM"}`), `member "alg" more than once`},
		{"header not an object", b64(`["enc"]`) + ".a.b.c.d", `not a JWE`},
		{"empty encrypted key", b64(ok) + "..aXY." + b64("c") + "." + b64("t"), `encrypted key is empty`},
		{"empty iv", b64(ok) + "." + b64("k") + ".." + b64("c") + "." + b64("t"), `initialization vector is empty`},
		{"empty tag", b64(ok) + "." + b64("k") + "." + b64("iv") + "." + b64("c") + ".", `authentication tag is empty`},
		{"no alg", compact(`{"enc":"A256GCM"}`), `no "alg" header`},
		{"truncated: 4 parts", b64(ok) + "." + b64("k") + "." + b64("iv") + "." + b64("c"), `5 parts`},
		{"100k dots", b64(ok) + strings.Repeat(".", 100000), `5 parts`},
		{"padding", strings.Replace(compact(ok), ".", "=.", 1), `not base64url`},
		{"standard base64", b64(ok) + ".YWJj+ZGVm/Z2hp." + b64("iv") + "." + b64("c") + "." + b64("t"), `not base64url`},
		{"whitespace inside", b64(ok) + ". " + b64("encrypted-key") + "." + b64("iv") + "." + b64("c") + "." + b64("t"), `not base64url`},
		{"bad length", b64(ok) + "." + b64("encrypted-key") + "x." + b64("iv") + "." + b64("c") + "." + b64("t"), `not base64url`},
		{"oversized header", compact(huge), `larger than the limit`},
		{"name without namespace", compact(`{"alg":"RSA-OAEP-256","enc":"A256GCM","jwe-webhook.io/name":"db"}`), `no namespace`},
		{"empty namespace", compact(`{"alg":"RSA-OAEP-256","enc":"A256GCM","jwe-webhook.io/namespace":""}`), `non-empty string`},
		{"invalid JSON header", b64(`{"enc":"A256GCM",}`) + ".a.b.c.d", `not a JWE`},
		{"non-UTF-8 kid", compact("{\"alg\":\"RSA-OAEP-256\",\"enc\":\"A256GCM\",\"kid\":\"\xff\"}"), `not valid JSON`},

		{"json: alg smuggled in unprotected", jsonJWE(map[string]any{
			"protected":   b64(`{"enc":"A256GCM","alg":"RSA-OAEP-256"}`),
			"unprotected": map[string]any{"alg": "RSA-OAEP"},
			"recipients":  nil, "encrypted_key": b64("ek"),
		}), `"alg" appears in both the protected header and the unprotected header`},
		{"json: alg shadowed per recipient", jsonJWE(map[string]any{
			"protected": b64(`{"enc":"A256GCM","alg":"RSA-OAEP-256"}`),
		}), `"alg" appears in both the protected header and the recipient 1 header`},
		{"json: second recipient bad alg", jsonJWE(map[string]any{
			"recipients": []any{
				map[string]any{"header": map[string]any{"alg": "RSA-OAEP-256", "kid": "k1"}, "encrypted_key": b64("ek")},
				map[string]any{"header": map[string]any{"alg": "RSA1_5", "kid": "k2"}, "encrypted_key": b64("ek2")},
			},
		}), `recipient 2 header: key algorithm "RSA1_5" is not allowed`},
		{"json: recipient member spelled Header", jsonJWE(map[string]any{
			"recipients": []any{map[string]any{"Header": map[string]any{"alg": "RSA-OAEP-256"}, "encrypted_key": b64("ek")}},
		}), `a recipient has an unknown member "Header"`},
		{"json: Header beside header", jsonJWE(map[string]any{
			"recipients": []any{map[string]any{"header": map[string]any{"alg": "RSA-OAEP-256"}, "Header": map[string]any{"alg": "RSA-OAEP"}, "encrypted_key": b64("ek")}},
		}), `a recipient has an unknown member "Header"`},
		{"json: unknown recipient member", jsonJWE(map[string]any{
			"recipients": []any{map[string]any{"header": map[string]any{"alg": "RSA-OAEP-256"}, "encrypted_key": b64("ek"), "extra": 1}},
		}), `a recipient has an unknown member "extra"`},
		{"json: recipient not an object", jsonJWE(map[string]any{"recipients": []any{"ek"}}), `a recipient is not a JSON object`},
		{"json: two recipients with the same encrypted key", jsonJWE(map[string]any{
			"recipients": []any{
				map[string]any{"header": map[string]any{"alg": "RSA-OAEP-256", "kid": "k1"}, "encrypted_key": b64("same key")},
				map[string]any{"header": map[string]any{"alg": "RSA-OAEP-256", "kid": "k2"}, "encrypted_key": b64("other")},
				map[string]any{"header": map[string]any{"alg": "RSA-OAEP-256", "kid": "k3"}, "encrypted_key": b64("same key")},
			},
		}), `recipients 1 and 3 have the same encrypted key`},
		{"json: malformed x5c in a recipient", jsonJWE(map[string]any{
			"recipients": []any{map[string]any{"header": map[string]any{"alg": "RSA-OAEP-256", "kid": "k1", "x5c": []string{"!!"}}, "encrypted_key": b64("ek")}},
		}), `recipient 1 header: parameter "x5c" is malformed`},
		{"json: malformed jwk in a recipient", jsonJWE(map[string]any{
			"recipients": []any{
				map[string]any{"header": map[string]any{"alg": "RSA-OAEP-256", "kid": "k1"}, "encrypted_key": b64("ek")},
				map[string]any{"header": map[string]any{"alg": "RSA-OAEP-256", "kid": "k2", "jwk": map[string]any{"kty": "no such type"}}, "encrypted_key": b64("ek2")},
			},
		}), `recipient 2 header: parameter "jwk" is malformed`},
		{"json: malformed epk in a recipient", jsonJWE(map[string]any{
			"recipients": []any{map[string]any{"header": map[string]any{"alg": "ECDH-ES+A256KW", "epk": map[string]any{"kty": "EC", "crv": "P-256", "x": "!", "y": "!"}}, "encrypted_key": b64("ek")}},
		}), `recipient 1 header: "epk" is not a JWK`},
		{"epk not a JWK", compact(`{"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk":{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}}`), `protected header: "epk" is not a JWK`},
		{"epk an RSA key", compact(`{"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk":{"kty":"RSA","n":"AQAB","e":"AQAB"}}`), `"epk" is not an EC public key`},
		{"apu not base64url", compact(`{"alg":"ECDH-ES+A256KW","enc":"A256GCM","apu":"a b"}`), `"apu": not base64url`},
		{"apv not a string", compact(`{"alg":"ECDH-ES+A256KW","enc":"A256GCM","apv":7}`), `"apv" is not a string`},
		{"json: second recipient empty key", jsonJWE(map[string]any{
			"recipients": []any{
				map[string]any{"header": map[string]any{"alg": "RSA-OAEP-256", "kid": "k1"}, "encrypted_key": b64("ek")},
				map[string]any{"header": map[string]any{"alg": "RSA-OAEP-256", "kid": "k2"}, "encrypted_key": ""},
			},
		}), `recipient 2: encrypted key is empty`},
		{"json: enc unprotected", jsonJWE(map[string]any{
			"protected":   b64(`{"kid":"x"}`),
			"unprotected": map[string]any{"enc": "A256GCM"},
		}), `"enc", which must be in the protected header`},
		{"json: scope unprotected", jsonJWE(map[string]any{
			"unprotected": map[string]any{"jwe-webhook.io/namespace": "prod"},
		}), `which must be in the protected header`},
		{"json: no protected header", jsonJWE(map[string]any{"protected": nil}), `no "protected" header`},
		{"json: zip per recipient", jsonJWE(map[string]any{
			"recipients": []any{map[string]any{"header": map[string]any{"alg": "RSA-OAEP-256", "zip": "DEF"}, "encrypted_key": b64("ek")}},
		}), `compression is not allowed`},
		{"json: too many recipients", jsonJWE(map[string]any{"recipients": many}), `more than the limit`},
		{"json: no recipients", jsonJWE(map[string]any{"recipients": []any{}}), `empty "recipients"`},
		{"json: flattened and general", jsonJWE(map[string]any{"encrypted_key": b64("another key")}), `mixes "recipients"`},
		{"json: flattened header and general", jsonJWE(map[string]any{"header": map[string]any{"kid": "k9"}}), `mixes "recipients"`},
		{"json: unknown member", strings.Replace(jsonJWE(nil), `"iv":`, `"Protected":"x","iv":`, 1), `unknown member "Protected"`},
		{"json: missing iv", jsonJWE(map[string]any{"iv": nil}), `no "iv"`},
		{"json: duplicate member", `{"protected":"` + b64(`{"enc":"A256GCM"}`) + `","ciphertext":"YQ","ciphertext":"Yg","iv":"YQ","tag":"YQ","header":{"alg":"RSA-OAEP-256"},"encrypted_key":"YQ"}`, `member "ciphertext" more than once`},
		{"json: duplicate in protected", jsonJWE(map[string]any{"protected": b64(`{"enc":"A256GCM","enc":"A128GCM"}`)}), `member "enc" more than once`},
		{"json: bad base64 in recipient", jsonJWE(map[string]any{
			"recipients": []any{map[string]any{"header": map[string]any{"alg": "RSA-OAEP-256"}, "encrypted_key": "!!not-base64url!!"}},
		}), `not base64url`},
		{"json: huge", `{"ciphertext":"` + strings.Repeat("A", jwe.MaxSize) + `"}`, `not a JWE`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			obj, err := jwe.Parse([]byte(c.in))
			if err == nil {
				t.Fatalf("accepted: %+v", obj)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
			if c.want != "not a JWE" && errors.Is(err, jwe.ErrNotJWE) {
				t.Fatalf("a JWE-shaped value must be refused, not passed through: %v", err)
			}
			if len(err.Error()) > 400 {
				t.Fatalf("error is %d bytes; it must not echo the input", len(err.Error()))
			}
			if e := testkit.Echo(err.Error(), []byte(c.in), testkit.MinEcho); e != "" {
				t.Fatalf("error %q contains %q from the value", err, e)
			}
		})
	}
}

func TestEncryptRefuses(t *testing.T) {
	ks := keys(t)
	rsaKey, ecKey := ks["rsa-2048.pem"], ks["ec-p256.pem"]
	tooMany := make([]jwe.PublicKey, jwe.MaxRecipients+1)
	for i := range tooMany {
		tooMany[i] = publicKey(rsaKey, "")
	}
	cases := map[string]struct {
		scope jwe.Scope
		enc   string
		rs    []jwe.PublicKey
		want  string
	}{
		"no recipients":          {jwe.Scope{}, "", nil, "no recipients"},
		"too many recipients":    {jwe.Scope{}, "", tooMany, "more than the limit of 16"},
		"name without namespace": {jwe.Scope{Name: "x"}, "", []jwe.PublicKey{publicKey(rsaKey, "")}, `scope names Secret "x" but no namespace`},
		"bad enc":                {jwe.Scope{}, "A192CBC-HS384", []jwe.PublicKey{publicKey(rsaKey, "")}, `content encryption "A192CBC-HS384" is not allowed`},
		"RSA1_5":                 {jwe.Scope{}, "", []jwe.PublicKey{publicKey(rsaKey, "RSA1_5")}, `recipient 1: key algorithm "RSA1_5" is not allowed for this key`},
		"OAEP on EC key":         {jwe.Scope{}, "", []jwe.PublicKey{publicKey(rsaKey, ""), publicKey(ecKey, "RSA-OAEP-256")}, `recipient 2: key algorithm "RSA-OAEP-256" is not allowed for this key`},
		"not a key":              {jwe.Scope{}, "", []jwe.PublicKey{{Key: "pem"}}, "recipient 1: unsupported public key type string"},
	}
	for name, c := range cases {
		out, err := jwe.Encrypt([]byte("x"), c.scope, c.enc, c.rs...)
		if err == nil {
			t.Errorf("%s: encrypted: %.30q", name, out)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not contain %q", name, err, c.want)
		}
	}
}
