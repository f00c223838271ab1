package vaulttest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/jwe-webhook/jwe-webhook/internal/kms/vault/vaulttest"
)

// TestWireShapes checks raw answers against the shapes Vault documents.
func TestWireShapes(t *testing.T) {
	t.Parallel()
	s := vaulttest.New(vaulttest.Options{RootToken: "root", Transit: []string{"kms/transit"}})
	t.Cleanup(s.Close)
	if err := s.CreateKey("kms/transit", "k", "rsa-2048"); err != nil {
		t.Fatal(err)
	}
	s.AddKubernetesRole("kubernetes", "r", "jwt", vaulttest.TokenOptions{})
	for _, c := range []struct {
		method, path, token, body string
		status                    int
		want                      string // a JSON fragment of the answer
	}{
		{"GET", "/v1/kms/transit/keys/k", "", "", 403, `{"errors":["permission denied"]}`},
		{"GET", "/v1/kms/transit/keys/k", "wrong", "", 403, `{"errors":["permission denied"]}`},
		{"GET", "/v1/kms/transit/keys/k", "root", "", 200, `"latest_version":1`},
		{"GET", "/v1/kms/transit/keys/k", "root", "", 200, `"type":"rsa-2048"`},
		{"GET", "/v1/kms/transit/keys/k", "root", "", 200, `"public_key":"-----BEGIN PUBLIC KEY-----\n`},
		{"GET", "/v1/kms/transit/keys/none", "root", "", 404, `{"errors":[]}`},
		{"GET", "/v1/transit/keys/k", "root", "", 404, `no handler for route`},
		{"PUT", "/v1/kms/transit/decrypt/k", "root", `{"ciphertext":"v1:abc"}`, 400, `{"errors":["invalid ciphertext: no prefix"]}`},
		{"POST", "/v1/kms/transit/decrypt/k", "root", `{"ciphertext":"vault:v2:abc"}`, 400, `{"errors":["invalid ciphertext: version is too new"]}`},
		{"POST", "/v1/kms/transit/decrypt/k", "root", `{"ciphertext":"vault:v1:!!"}`, 400, `could not decode base64`},
		{"POST", "/v1/kms/transit/decrypt/k", "root", `{"ciphertext":"vault:v1:AAAA"}`, 500, `failed to RSA decrypt the ciphertext`},
		{"POST", "/v1/kms/transit/decrypt/none", "root", `{"ciphertext":"vault:v1:AAAA"}`, 400, `{"errors":["encryption key not found"]}`},
		{"POST", "/v1/kms/transit/keys/k/config", "root", `{"min_decryption_version":3}`, 400, `cannot set min decryption version of 3`},
		{"POST", "/v1/auth/kubernetes/login", "", `{"role":"r","jwt":"jwt"}`, 200, `"auth":{`},
		{"POST", "/v1/auth/kubernetes/login", "", `{"role":"r","jwt":"other"}`, 403, `{"errors":["permission denied"]}`},
		{"POST", "/v1/auth/kubernetes/login", "", `{"role":"x","jwt":"jwt"}`, 400, `invalid role name`},
		{"GET", "/v1/auth/token/lookup-self", "root", "", 200, `"policies":["root"]`},
		{"POST", "/v1/auth/token/renew-self", "root", "", 400, `{"errors":["lease is not renewable"]}`},
		{"DELETE", "/v1/kms/transit/keys/k", "root", "", 400, `deletion is not allowed`},
	} {
		req, err := http.NewRequestWithContext(t.Context(), c.method, s.URL+c.path, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		if c.token != "" {
			req.Header.Set("X-Vault-Token", c.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(body), c.want) || !json.Valid(body) {
			t.Errorf("%s %s: %d %s\nwant %d with %s", c.method, c.path, resp.StatusCode, body, c.status, c.want)
		}
	}
}

func TestCalls(t *testing.T) {
	t.Parallel()
	s := vaulttest.New(vaulttest.Options{RootToken: "root"})
	t.Cleanup(s.Close)
	for _, p := range []string{"/v1/transit/decrypt/k", "/v1/transit/decrypt/k", "/v1/auth/k8s/login", "/v1/transit/keys/k/rotate"} {
		resp, err := http.Post(s.URL+p, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	for op, want := range map[string]int{vaulttest.OpDecrypt: 2, vaulttest.OpLogin: 1, vaulttest.OpRotate: 1, vaulttest.OpKeys: 0} {
		if got := s.Calls(op); got != want {
			t.Errorf("Calls(%q) = %d, want %d", op, got, want)
		}
	}
}
