package keyconfig_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/jwe-webhook/jwe-webhook/internal/kms/keyconfig"
)

// lineNumbered is how every Parse error starts, so ReadFile can prefix the path.
var lineNumbered = regexp.MustCompile(`^[1-9][0-9]*: `)

// FuzzParse checks that any input is either refused with an error that starts
// with a line number, or parsed into keys that each name a known provider,
// carry their line, and read back the same after writing them out as YAML.
// The seed corpus (testdata/valid.yaml plus testdata/fuzz) runs in every go test.
func FuzzParse(f *testing.F) {
	valid, err := os.ReadFile(filepath.Join("testdata", "valid.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	for _, s := range []string{
		"", "keys: []\n", "keys:\n  - provider: local\n    local: {file: k.pem}\n    namespaces: [\"a\", \"b-*\"]\n",
		"keys:\n  - provider: gcpkms\n    gcpkms: {name: projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1, endpoint: \"127.0.0.1:1\", insecure: true}\n",
		"keys:\n  - provider: vault\n    vault: {address: \"http://[::1]:8200\", mount: transit, key: k, auth: {method: token, tokenFile: t}}\n",
		"keys: &a\n  - *a\n", "keys:\n  - provider: local\n---\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := keyconfig.Parse(data)
		if err != nil {
			if !lineNumbered.MatchString(err.Error()) {
				t.Fatalf("error without a line number: %q", err)
			}
			return
		}
		if len(cfg.Keys) == 0 {
			t.Fatal("no keys and no error")
		}
		for i, k := range cfg.Keys {
			if k.Line < 1 {
				t.Fatalf("keys[%d] (%s) has line %d", i, k.Provider, k.Line)
			}
			if n := btoi(k.Local != nil) + btoi(k.GCPKMS != nil) + btoi(k.Vault != nil); n != 1 {
				t.Fatalf("keys[%d] (%s) has %d provider blocks", i, k.Provider, n)
			}
		}
		out, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatalf("cannot write the configuration out: %v", err)
		}
		again, err := keyconfig.Parse(out)
		if err != nil {
			t.Fatalf("written out, it no longer parses: %v\n%s", err, out)
		}
		// Written out again, it is the same: every field was read back.
		// (Lines differ, and are not written.)
		if out2, err := yaml.Marshal(again); err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("written out, it reads back differently (%v):\n%s\nthen:\n%s", err, out, out2)
		}
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
