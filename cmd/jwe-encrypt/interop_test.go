package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/local"
	"github.com/jwe-webhook/jwe-webhook/internal/testkit"
)

// interopDir holds the Node.js side of TestInteropJose.
var interopDir = filepath.Join("..", "..", "test", "interop")

// TestInteropJose checks jwe-encrypt against another JOSE implementation,
// the jose npm package: what jwe-encrypt writes, jose decrypts, and what
// jose writes with the scope parameters, the webhook's parser and keyring
// decrypt. It needs node and test/interop/node_modules (npm ci --prefix
// test/interop): without them it is skipped, or fails when CI is set.
func TestInteropJose(t *testing.T) {
	node := requireNode(t)
	type key struct{ pub, priv, alg string }
	rsaKey := key{"testdata/rsa-2048.pub.pem", "testdata/rsa-2048.pem", "RSA-OAEP-256"}
	ecKey := key{"testdata/ec-p256.pub.pem", "testdata/ec-p256.pem", "ECDH-ES+A256KW"}
	pem := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	kid := func(k key) string {
		pks, err := local.LoadPublicFile(k.pub)
		if err != nil {
			t.Fatal(err)
		}
		return pks[0].KeyID
	}
	const plaintext = "hunter2 — ünïcödé"
	scope := map[string]any{jwe.HeaderNamespace: "hr", jwe.HeaderName: "db"}

	// jwe-encrypt's values, one recipient and two.
	ours := map[string]string{}
	for name, args := range map[string][]string{
		"rsa":         {"-r", rsaKey.pub},
		"ec":          {"-r", ecKey.pub, "--enc", "A128CBC-HS256"},
		"two-for-rsa": {"-r", ecKey.pub, "-r", rsaKey.pub},
	} {
		ours[name] = encryptWithCLI(t, plaintext, append(args, "--namespace", "hr", "--name", "db")...)
	}
	ours["two-for-ec"] = ours["two-for-rsa"]

	// jose's requests: thumbprints, decryption of ours, encryption of its own.
	type recipient struct {
		Key string `json:"key"`
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	recipientOf := func(k key) recipient { return recipient{pem(k.pub), k.alg, kid(k)} }
	requests := []map[string]any{
		{"op": "thumbprint", "key": pem(rsaKey.pub), "alg": rsaKey.alg},
		{"op": "thumbprint", "key": pem(ecKey.pub), "alg": ecKey.alg},
	}
	decrypts := map[string]key{"rsa": rsaKey, "ec": ecKey, "two-for-rsa": rsaKey, "two-for-ec": ecKey}
	names := []string{"rsa", "ec", "two-for-rsa", "two-for-ec"}
	for _, name := range names {
		k := decrypts[name]
		requests = append(requests, map[string]any{"op": "decrypt", "jwe": ours[name], "key": pem(k.priv), "alg": k.alg})
	}
	encrypts := []struct {
		name          string
		serialization string
		recipients    []key
	}{
		{"compact RSA-OAEP-256", "compact", []key{rsaKey}},
		{"compact ECDH-ES+A256KW", "compact", []key{ecKey}},
		{"general, two recipients", "general", []key{rsaKey, ecKey}},
	}
	for _, e := range encrypts {
		var rs []recipient
		for _, k := range e.recipients {
			rs = append(rs, recipientOf(k))
		}
		requests = append(requests, map[string]any{"op": "encrypt", "serialization": e.serialization,
			"plaintext": plaintext, "protectedHeader": merge(scope, map[string]any{"enc": "A256GCM"}), "recipients": rs})
	}
	results := runNode(t, node, requests)

	t.Run("thumbprints", func(t *testing.T) {
		for i, k := range []key{rsaKey, ecKey} {
			if got := results[i]["kid"]; got != kid(k) {
				t.Errorf("%s: jose's RFC 7638 thumbprint %v, ours %q", k.pub, got, kid(k))
			}
		}
	})
	results = results[2:]
	for i, name := range names {
		t.Run("jose decrypts jwe-encrypt/"+name, func(t *testing.T) {
			r := results[i]
			if r["error"] != nil || r["plaintext"] != plaintext {
				t.Fatalf("jose: %v", r)
			}
			h := merge(r["protectedHeader"].(map[string]any), r["unprotectedHeader"].(map[string]any))
			if h[jwe.HeaderNamespace] != "hr" || h[jwe.HeaderName] != "db" {
				t.Errorf("scope in the headers jose read: %v", h)
			}
		})
	}
	results = results[len(names):]
	for i, e := range encrypts {
		t.Run("webhook decrypts jose/"+e.name, func(t *testing.T) {
			r := results[i]
			value, ok := r["jwe"].(string)
			if !ok {
				t.Fatalf("jose: %v", r)
			}
			obj, err := jwe.Parse([]byte(value))
			if err != nil {
				t.Fatal(err)
			}
			if obj.Scope != (jwe.Scope{Namespace: "hr", Name: "db"}) || len(obj.Recipients) != len(e.recipients) {
				t.Fatalf("scope %v, %d recipients", obj.Scope, len(obj.Recipients))
			}
			for _, k := range e.recipients {
				kr, _, err := keyring(t.Context(), []string{k.priv})
				if err != nil {
					t.Fatal(err)
				}
				got, err := decryptValue(t.Context(), kr, []byte(value), "hr", "db")
				if err != nil || string(got) != plaintext {
					t.Errorf("with %s: %q, %v", k.priv, got, err)
				}
			}
			var out bytes.Buffer
			c := &cli{stdin: strings.NewReader(value), stdout: &out, stderr: &out, getenv: os.Getenv}
			if code := c.main(t.Context(), []string{"inspect"}); code != 0 || !strings.Contains(out.String(), "scope=strict:hr/db") {
				t.Errorf("inspect: %s", out.String())
			}
		})
	}
}

// requireNode returns the path of node, or skips the test when node or the
// jose package is missing (failing it under CI, which must run it).
func requireNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	missing := ""
	switch {
	case err != nil:
		missing = "node is not installed"
	default:
		if _, err := os.Stat(filepath.Join(interopDir, "node_modules", "jose", "package.json")); err != nil {
			missing = "the jose package is not installed: run npm ci --prefix test/interop"
		}
	}
	if missing == "" {
		return node
	}
	testkit.Require(t, missing)
	return ""
}

// runNode sends the requests to interop.mjs and returns its results.
func runNode(t *testing.T, node string, requests []map[string]any) []map[string]any {
	t.Helper()
	in, err := json.Marshal(requests)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), node, filepath.Join(interopDir, "interop.mjs"))
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node interop.mjs: %v\n%s", err, stderr.String())
	}
	var results []map[string]any
	if err := json.Unmarshal(out, &results); err != nil || len(results) != len(requests) {
		t.Fatalf("node interop.mjs answered %d results for %d requests: %v\n%s", len(results), len(requests), err, out)
	}
	return results
}

// encryptWithCLI runs jwe-encrypt on plaintext and returns the JWE.
func encryptWithCLI(t *testing.T, plaintext string, args ...string) string {
	t.Helper()
	var out, stderr bytes.Buffer
	c := &cli{stdin: strings.NewReader(plaintext), stdout: &out, stderr: &stderr, getenv: func(string) string { return "" }}
	if code := c.main(t.Context(), args); code != 0 {
		t.Fatalf("jwe-encrypt %s: %s", strings.Join(args, " "), stderr.String())
	}
	return strings.TrimSpace(out.String())
}

func merge(a, b map[string]any) map[string]any {
	m := map[string]any{}
	for _, h := range []map[string]any{a, b} {
		for k, v := range h {
			m[k] = v
		}
	}
	return m
}
