package keyconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	cfg, err := ReadFile(filepath.Join("testdata", "valid.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Keys) != 3 {
		t.Fatalf("%d keys", len(cfg.Keys))
	}
	want := []struct {
		provider string
		line     int
	}{{"local", 3}, {"gcpkms", 7}, {"vault", 12}}
	for i, w := range want {
		if k := cfg.Keys[i]; k.Provider != w.provider || k.Line != w.line {
			t.Errorf("keys[%d]: provider %q line %d, want %q line %d", i, k.Provider, k.Line, w.provider, w.line)
		}
	}
	if got := cfg.Keys[1].Namespaces; len(got) != 2 || got[1] != "hr-*" {
		t.Errorf("namespaces %q", got)
	}
	if v := cfg.Keys[2].Vault; v.Auth.Role != "jwe-webhook" || v.TLS.CAFile != "/etc/vault/ca.pem" || cfg.Keys[2].KID != "vault://transit/payments" {
		t.Errorf("vault %+v", v)
	}
}

// TestInvalid checks that every error has the form "LINE: PATH: message",
// LINE being the line of the field that is wrong.
func TestInvalid(t *testing.T) {
	local := "  - provider: local\n    local: {file: k.pem}\n"
	vault := "keys:\n  - provider: vault\n    vault:\n      address: https://vault:8200\n      mount: transit\n      key: k\n"
	cases := []struct {
		name, yaml, want string
	}{
		{"empty", "", "1: keys: missing; the file is empty"},
		{"no keys", "# keys\nkeys: []\n", "2: keys: no keys"},
		{"not yaml", "keys: [\n", "1: did not find expected"},
		{"not a mapping", "- a\n", "1: the file: want a mapping of fields (keys), found a list"},
		{"unknown top-level field", "keys: []\ncache: {}\n", "2: cache: unknown field; known fields here: keys"},
		{"unknown key field", "keys:\n" + local + "    colour: blue\n", "4: keys[0].colour: unknown field; known fields here: kid, provider, namespaces, local, gcpkms, vault"},
		{"typo in provider block", "keys:\n  - provider: local\n    local: {path: k.pem}\n", "3: keys[0].local.path: unknown field; known fields here: file"},
		{"typo deeper", vault + "      auth:\n        role: r\n        tokenfile: t\n", "9: keys[0].vault.auth.tokenfile: unknown field; known fields here: method, role, mount, serviceAccountTokenFile, tokenFile"},
		{"entry not a mapping", "keys:\n  - 7\n", `2: keys[0]: want a mapping of fields (kid, provider, namespaces, local, gcpkms, vault, awskms, azurekv), found "7"`},
		{"not a bool", "keys:\n  - provider: gcpkms\n    gcpkms:\n      insecure: maybe\n", `4: keys[0].gcpkms.insecure: want true or false, found "maybe"`},
		{"missing provider", "keys:\n  - local: {file: k.pem}\n", "2: keys[0].provider: missing"},
		{"unknown provider", "keys:\n  - kid: x\n    provider: aws\n", `3: keys[0].provider: "aws" is not one of`},
		{"missing block", "keys:\n" + local + "  - provider: vault\n", `4: keys[1].vault: missing`},
		{"two blocks", "keys:\n  - provider: local\n    local: {file: k.pem}\n    gcpkms: {name: x}\n", "4: keys[0].gcpkms: settings for another provider"},
		{"local without file", "keys:\n  - provider: local\n    local: {}\n", "3: keys[0].local.file: missing"},
		{"bad glob", "keys:\n" + local + "    namespaces:\n      - a\n      - \"[a\"\n", `6: keys[0].namespaces[1]: "[a" is not a valid glob`},
		{"empty glob", "keys:\n" + local + "    namespaces: [\"\"]\n", `4: keys[0].namespaces[0]: empty pattern`},
		{"gcp bad name", "keys:\n  - provider: gcpkms\n    gcpkms:\n      endpoint: \"127.0.0.1:1\"\n      name: projects/p/keyRings/r\n", "5: keys[0].gcpkms.name: \"projects/p/keyRings/r\" is not a crypto key"},
		{"gcp insecure remote", "keys:\n  - provider: gcpkms\n    gcpkms: {name: projects/p/locations/l/keyRings/r/cryptoKeys/k, endpoint: kms.example:443, insecure: true}\n", "3: keys[0].gcpkms.insecure: only allowed with a loopback"},
		{"vault http", "keys:\n  - provider: vault\n    vault: {address: http://vault:8200, mount: transit, key: k, auth: {role: r}}\n", `3: keys[0].vault.address: "http://vault:8200" must be an https:// URL`},
		{"vault no mount", "keys:\n  - provider: vault\n    vault: {address: https://vault:8200, key: k, auth: {role: r}}\n", "3: keys[0].vault.mount: missing"},
		{"vault no role", vault + "      auth: {method: kubernetes}\n", "7: keys[0].vault.auth.role: missing"},
		{"vault token without file", vault + "      auth:\n        method: token\n", "7: keys[0].vault.auth.tokenFile: missing"},
		{"vault bad method", vault + "      auth:\n        method: ldap\n", `8: keys[0].vault.auth.method: "ldap"`},
		{"two documents", "keys:\n" + local + "---\nkeys: []\n", "4: one YAML document expected"},
		{"broken second document", "keys:\n" + local + "---\n[\n", "5: did not find expected node content"},
		{"wrong type", "keys: {a: b}\n", "1: keys: want a list, found a mapping"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml))
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

func TestLoopbackOnlyForPlaintext(t *testing.T) {
	ok := []string{"http://127.0.0.1:8200", "http://localhost:8200", "http://[::1]:8200/", "https://vault.example"}
	for _, a := range ok {
		if !validEndpointURL(a) {
			t.Errorf("%q refused", a)
		}
	}
	for _, a := range []string{"http://10.0.0.1:8200", "http://127.0.0.1.evil.example", "vault:8200", "ftp://127.0.0.1"} {
		if validEndpointURL(a) {
			t.Errorf("%q accepted", a)
		}
	}
}

func TestReadFileNamesThePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.yaml")
	if err := os.WriteFile(path, []byte("keys:\n  - provider: local\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFile(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+":2: keys[0].local: missing") {
		t.Fatalf("got %v", err)
	}
	// The README's example: the line of the field, not of the entry.
	data := "keys:\n  - provider: local\n    local: {file: k.pem}\n  - provider: gcpkms\n    namespaces: [hr]\n    gcpkms:\n      name: projects/p\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = ReadFile(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+`:7: keys[1].gcpkms.name: "projects/p" is not a crypto key`) {
		t.Fatalf("got %v", err)
	}
}
