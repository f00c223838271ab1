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

func TestInvalid(t *testing.T) {
	local := "  - provider: local\n    local: {file: k.pem}\n"
	cases := []struct {
		name, yaml, want string
	}{
		{"empty", "", "1: empty key configuration"},
		{"no keys", "keys: []\n", "no keys"},
		{"not yaml", "keys: [\n", "did not find expected"},
		{"unknown top-level field", "keys: []\ncache: {}\n", "2: field cache not found"},
		{"unknown key field", "keys:\n" + local + "    colour: blue\n", "4: field colour not found"},
		{"typo in provider block", "keys:\n  - provider: local\n    local: {path: k.pem}\n", "3: field path not found"},
		{"missing provider", "keys:\n  - local: {file: k.pem}\n", "2: keys[0].provider: missing"},
		{"unknown provider", "keys:\n  - provider: aws\n", `2: keys[0].provider: "aws" is not one of`},
		{"missing block", "keys:\n" + local + "  - provider: vault\n", `4: keys[1].vault: missing`},
		{"two blocks", "keys:\n  - provider: local\n    local: {file: k.pem}\n    gcpkms: {name: x}\n", "keys[0].gcpkms: settings for another provider"},
		{"local without file", "keys:\n  - provider: local\n    local: {}\n", "keys[0].local.file: missing"},
		{"bad glob", "keys:\n" + local + "    namespaces: [\"[a\"]\n", `keys[0].namespaces[0]: "[a" is not a valid glob`},
		{"empty glob", "keys:\n" + local + "    namespaces: [\"\"]\n", `namespaces[0]: empty pattern`},
		{"gcp bad name", "keys:\n  - provider: gcpkms\n    gcpkms: {name: projects/p/keyRings/r}\n", "keys[0].gcpkms.name"},
		{"gcp insecure remote", "keys:\n  - provider: gcpkms\n    gcpkms: {name: projects/p/locations/l/keyRings/r/cryptoKeys/k, endpoint: kms.example:443, insecure: true}\n", "gcpkms.insecure: only allowed with a loopback"},
		{"vault http", "keys:\n  - provider: vault\n    vault: {address: http://vault:8200, mount: transit, key: k, auth: {role: r}}\n", "must be an https:// URL"},
		{"vault no mount", "keys:\n  - provider: vault\n    vault: {address: https://vault:8200, key: k, auth: {role: r}}\n", "vault.mount: missing"},
		{"vault no role", "keys:\n  - provider: vault\n    vault: {address: https://vault:8200, mount: transit, key: k}\n", "vault.auth.role: missing"},
		{"vault token without file", "keys:\n  - provider: vault\n    vault: {address: https://vault:8200, mount: transit, key: k, auth: {method: token}}\n", "vault.auth.tokenFile: missing"},
		{"vault bad method", "keys:\n  - provider: vault\n    vault: {address: https://vault:8200, mount: transit, key: k, auth: {method: ldap}}\n", `vault.auth.method: "ldap"`},
		{"two documents", "keys:\n" + local + "---\nkeys: []\n", "4: one YAML document expected"},
		{"broken second document", "keys:\n" + local + "---\n[\n", "5: did not find expected node content"},
		{"wrong type", "keys: {a: b}\n", "1: cannot unmarshal"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

func TestLoopbackOnlyForPlaintext(t *testing.T) {
	ok := []string{"http://127.0.0.1:8200", "http://localhost:8200", "http://[::1]:8200/", "https://vault.example"}
	for _, a := range ok {
		if !validVaultAddress(a) {
			t.Errorf("%q refused", a)
		}
	}
	for _, a := range []string{"http://10.0.0.1:8200", "http://127.0.0.1.evil.example", "vault:8200", "ftp://127.0.0.1"} {
		if validVaultAddress(a) {
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
}
