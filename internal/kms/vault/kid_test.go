package vault_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jwe-webhook/jwe-webhook/internal/kms/vault"
)

func TestParseKeyID(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		kid, mount, key string
		version         int
	}{
		{"vault://transit/webhook?version=1", "transit", "webhook", 1},
		{"vault://transit/webhook?version=12", "transit", "webhook", 12},
		{"vault://transit/webhook", "transit", "webhook", 0},
		{"vault://kms/transit/hr-2026?version=3", "kms/transit", "hr-2026", 3},
		{"vault://a.b_c-d/k.e@y_1?version=999999999", "a.b_c-d", "k.e@y_1", 999999999},
	} {
		mount, key, version, err := vault.ParseKeyID(c.kid)
		if err != nil || mount != c.mount || key != c.key || version != c.version {
			t.Errorf("ParseKeyID(%q) = %q, %q, %d, %v; want %q, %q, %d", c.kid, mount, key, version, err, c.mount, c.key, c.version)
		}
		if got := vault.KeyIDFor(mount, key, version); got != c.kid {
			t.Errorf("KeyIDFor(%q, %q, %d) = %q, want %q", mount, key, version, got, c.kid)
		}
	}
}

func TestParseKeyIDRejects(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ kid, want string }{
		{"", `does not start with "vault://"`},
		{"vault:transit/k?version=1", `does not start with "vault://"`},
		{"VAULT://transit/k", `does not start with "vault://"`},
		{"vault://k?version=1", "is not vault://<mount>/<key>"},
		{"vault:///k", "empty mount"},
		{"vault://transit/", `key name ""`},
		{"vault://transit//k", `mount "transit/"`},
		{"vault://../k", `mount ".."`},
		{"vault://tran sit/k", `mount "tran sit"`},
		{"vault://transit/-k", `key name "-k"`},
		{"vault://transit/k.", `key name "k."`},
		{"vault://transit/k%2f", `key name "k%2f"`},
		{"vault://transit/k?version=0", `version "0"`},
		{"vault://transit/k?version=01", `version "01"`},
		{"vault://transit/k?version=-1", `version "-1"`},
		{"vault://transit/k?version=1x", `version "1x"`},
		{"vault://transit/k?version=", `version ""`},
		{"vault://transit/k?version=1000000000", `version "1000000000"`},
		{"vault://transit/k?v=1", `query must be "version=N"`},
		{"vault://transit/k?version=1&x=2", `version "1&x=2"`},
		{"vault://transit/k?", `query must be "version=N"`},
	} {
		_, _, _, err := vault.ParseKeyID(c.kid)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseKeyID(%q) = %v, want an error containing %q", c.kid, err, c.want)
		}
	}
}

func TestMatchKeyID(t *testing.T) {
	t.Parallel()
	_, cfg := fakeKey(t, "kms/transit")
	k := newKey(t, cfg)
	if got := k.KeyID(); got != "vault://kms/transit/webhook" {
		t.Errorf("KeyID() = %q", got)
	}
	for kid, want := range map[string]bool{
		"vault://kms/transit/webhook?version=1":  true,
		"vault://kms/transit/webhook?version=42": true,
		"vault://kms/transit/webhook":            false, // the family, no version
		"vault://kms/transit/webhook?version=0":  false,
		"vault://transit/webhook?version=1":      false,
		"vault://kms/transit/other?version=1":    false,
		"vault://kms/transit/webhook2?version=1": false,
		"webhook":                                false,
	} {
		if got := k.MatchKeyID(kid); got != want {
			t.Errorf("MatchKeyID(%q) = %v, want %v", kid, got, want)
		}
	}
}

// FuzzParseKeyID checks that every ID ParseKeyID accepts is canonical:
// KeyIDFor gives it back unchanged.
func FuzzParseKeyID(f *testing.F) {
	for _, s := range []string{"vault://transit/k?version=1", "vault://a/b/c", "vault://x/y?version=007", "vault://t/k?version=1?version=2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, kid string) {
		mount, key, version, err := vault.ParseKeyID(kid)
		if err != nil {
			return
		}
		if version < 0 || mount == "" || key == "" {
			t.Fatalf("ParseKeyID(%q) = %q, %q, %d", kid, mount, key, version)
		}
		if got := vault.KeyIDFor(mount, key, version); got != kid {
			t.Fatalf("KeyIDFor(ParseKeyID(%q)) = %q", kid, got)
		}
	})
}

func ExampleParseKeyID() {
	mount, key, version, err := vault.ParseKeyID("vault://kms/transit/hr-db?version=2")
	fmt.Println(mount, key, version, err)
	fmt.Println(vault.KeyIDFor(mount, key, version+1))
	fmt.Println(vault.KeyIDFor(mount, key, 0))
	// Output:
	// kms/transit hr-db 2 <nil>
	// vault://kms/transit/hr-db?version=3
	// vault://kms/transit/hr-db
}
