package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/jwe-webhook/jwe-webhook/internal/admission"
	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/gcpkms/gcpkmstest"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/vault/vaulttest"
	"github.com/jwe-webhook/jwe-webhook/internal/manifest"
)

// TestMain makes the test binary answer to jwe-encrypt and decrypt-for-test
// when the scripts run them.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"jwe-encrypt":      main,
		"decrypt-for-test": func() { os.Exit(decryptForTest(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// The key service keys the scripts use, in the fakes TestScripts starts.
const (
	gcpCryptoKey = "projects/p/locations/global/keyRings/k8s/cryptoKeys/secrets"
	vaultMount   = "transit"
	vaultKey     = "k8s-secrets"
)

// TestScripts runs testdata/script/*.txtar. Each script finds the key files
// of testdata in $WORK/keys, a fake Cloud KMS holding gcpCryptoKey (versions
// 1 and 2 enabled, 3 disabled) through JWE_ENCRYPT_GCPKMS_ENDPOINT, and a
// fake Vault holding the transit key vaultKey (versions 1 and 2) through
// VAULT_ADDR and VAULT_TOKEN (also in VAULT_ROOT_TOKEN), and the AWS KMS and
// Key Vault fakes of cloudEnv. Besides
// jwe-encrypt and decrypt-for-test, scripts have the commands redact-jwe,
// mode, write and serve-keys.
func TestScripts(t *testing.T) {
	gcp := gcpkmstest.Start(t)
	for n, state := range []kmspb.CryptoKeyVersion_CryptoKeyVersionState{kmspb.CryptoKeyVersion_ENABLED, kmspb.CryptoKeyVersion_ENABLED, kmspb.CryptoKeyVersion_DISABLED} {
		name := fmt.Sprintf("%s/cryptoKeyVersions/%d", gcpCryptoKey, n+1)
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		if err := gcp.AddVersion(name, kmspb.CryptoKeyVersion_RSA_DECRYPT_OAEP_2048_SHA256, key); err != nil {
			t.Fatal(err)
		}
		if err := gcp.SetState(name, state); err != nil {
			t.Fatal(err)
		}
	}
	v := vaulttest.New(vaulttest.Options{})
	t.Cleanup(v.Close)
	if err := v.CreateKey(vaultMount, vaultKey, "rsa-2048"); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, v.URL+"/v1/"+vaultMount+"/keys/"+vaultKey+"/rotate", nil)
	req.Header.Set("X-Vault-Token", v.RootToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("rotate the Vault key: %v %v", resp, err)
	}

	cloud := cloudEnv(t)
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			if err := copyKeys(filepath.Join(env.WorkDir, "keys")); err != nil {
				return err
			}
			env.Setenv("GCPKMS_KEY", gcpCryptoKey)
			env.Setenv(envGCPKMSEndpoint, gcp.Addr())
			env.Setenv(envGCPKMSInsecure, "1")
			env.Setenv("VAULT_ADDR", v.URL)
			env.Setenv("VAULT_TOKEN", v.RootToken)
			env.Setenv("VAULT_ROOT_TOKEN", v.RootToken)
			for k, v := range cloud {
				env.Setenv(k, v)
			}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"redact-jwe": redactJWE,
			"mode":       fileMode,
			"write":      writeFile,
			"serve-keys": serveKeys,
		},
	})
}

// jwePattern matches a JWE in a manifest: compact, or a JSON serialization
// in single quotes.
var jwePattern = regexp.MustCompile(`eyJ[\w-]*(\.[\w-]*){4}|'\{"ciphertext":[^']*\}'`)

// redactJWE writes file IN to OUT with each JWE replaced by "JWE", so that
// scripts can compare encrypted manifests: redact-jwe IN OUT.
func redactJWE(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: redact-jwe IN OUT")
	}
	out := jwePattern.ReplaceAllString(ts.ReadFile(args[0]), "JWE")
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(out), 0o644))
}

// serveKeys serves FILE at /keys on a loopback address for the rest of the
// script, as the webhook's metrics port does, and sets KEYS_URL to its URL:
// serve-keys FILE.
func serveKeys(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: serve-keys FILE")
	}
	body := []byte(ts.ReadFile(args[0]))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/keys" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(body)
	}))
	ts.Defer(srv.Close)
	ts.Setenv("KEYS_URL", srv.URL+"/keys")
}

// writeFile writes its arguments to a file: write FILE TEXT...
func writeFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: write FILE TEXT...")
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(strings.Join(args[1:], " ")), 0o600))
}

// fileMode checks the permission bits of a file: mode FILE 0640.
func fileMode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: mode FILE PERM")
	}
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	if got := fmt.Sprintf("%04o", fi.Mode().Perm()); got != args[1] {
		ts.Fatalf("%s has mode %s, want %s", args[0], got, args[1])
	}
}

// copyKeys copies the key files of testdata to dir.
func copyKeys(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files, err := filepath.Glob("testdata/*.*")
	if err != nil {
		return err
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// TestTwoClusters encrypts a manifest for two clusters and has the webhook's
// admission logic of each, with a keyring holding only its own key, accept
// the Secret and decrypt every value.
func TestTwoClusters(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secret.yaml")
	in := "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: hr\ndata:\n  password: aHVudGVyMg==\nstringData:\n  user: admin\n"
	if err := os.WriteFile(path, []byte(in), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	c := &cli{stdin: strings.NewReader(""), stdout: io.Discard, stderr: &stderr, getenv: func(string) string { return "" }}
	if code := c.main(t.Context(), []string{"-r", "testdata/rsa-2048.pub.pem", "-r", "testdata/ec-p256.pub.pem", "-f", path, "-i"}); code != 0 {
		t.Fatalf("jwe-encrypt: %s", stderr.String())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := manifest.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	// What the apiserver sends the webhook: stringData merged into data.
	s := f.Secrets()[0]
	values := map[string][]byte{}
	for _, v := range s.Values {
		values[v.Key] = v.Bytes
		if o, err := jwe.Parse(v.Bytes); err != nil || len(o.Recipients) != 2 {
			t.Fatalf("key %q: not a JWE for two recipients: %v", v.Key, err)
		}
	}
	for _, key := range []string{"testdata/rsa-2048.pem", "testdata/ec-p256.pem"} {
		kr, _, err := keyring(t.Context(), []string{key})
		if err != nil {
			t.Fatal(err)
		}
		got, err := review(t.Context(), kr, s.Namespace, s.Name, values)
		if err != nil {
			t.Fatalf("with %s: %v", key, err)
		}
		if string(got["password"]) != "hunter2" || string(got["user"]) != "admin" || len(got) != 2 {
			t.Errorf("with %s: the patch sets %q", key, got)
		}
	}
}

func TestSkipAnnotation(t *testing.T) {
	if skipAnnotation != admission.SkipAnnotation {
		t.Fatalf("skipAnnotation is %q, the webhook's is %q", skipAnnotation, admission.SkipAnnotation)
	}
}

// TestPrompt covers the terminal: the value is asked twice.
func TestPrompt(t *testing.T) {
	cases := []struct {
		answers []string
		err     string
	}{
		{[]string{"hunter2", "hunter2"}, ""},
		{[]string{"hunter2", "hunter3"}, "the two values differ"},
		{[]string{""}, "the value is empty"},
	}
	for _, tc := range cases {
		var out, stderr bytes.Buffer
		answers := tc.answers
		c := &cli{stdin: strings.NewReader("not read"), stdout: &out, stderr: &stderr, getenv: func(string) string { return "" },
			prompt: func(string) ([]byte, error) {
				a := answers[0]
				answers = answers[1:]
				return []byte(a), nil
			}}
		code := c.main(t.Context(), []string{"-r", "testdata/rsa-2048.pub.pem", "--namespace", "hr", "--name", "db"})
		if tc.err != "" {
			if code != 1 || !strings.Contains(stderr.String(), tc.err) || out.Len() > 0 {
				t.Errorf("%q: exit %d, stderr %q, stdout %q", tc.answers, code, stderr.String(), out.String())
			}
			continue
		}
		kr, _, err := keyring(t.Context(), []string{"testdata/rsa-2048.pem"})
		if err != nil {
			t.Fatal(err)
		}
		pt, err := decryptValue(t.Context(), kr, out.Bytes(), "hr", "db")
		if code != 0 || err != nil || string(pt) != "hunter2" {
			t.Errorf("%q: exit %d, %q, %v; stderr %q", tc.answers, code, pt, err, stderr.String())
		}
	}
}
