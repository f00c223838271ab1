package e2e_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/jwe-webhook/jwe-webhook/test/e2e/harness"
)

// TestKeyConfigEdits edits the webhook's key configuration while it runs. A
// broken file leaves it ready and decrypting with the last good keys,
// reported by /readyz and a metric; removing a key stops its values at once,
// even one it decrypted before, and drops its cached content keys.
func TestKeyConfigEdits(t *testing.T) {
	ns := newNamespace(t)
	local := map[string]any{"provider": "local", "local": map[string]any{"file": cluster.Key.PrivateFile}}
	kms := keys.KeyConfig()[0]
	path := restartWithKeyConfig(t, []any{local, kms}, "--key-config-reload-interval", "100ms")
	write := func(entries ...any) {
		t.Helper()
		b, err := yaml.Marshal(map[string]any{"keys": entries})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	waitReload := func(success string) {
		t.Helper()
		eventually(t, 10*time.Second, "jwe_webhook_key_config_last_reload_success "+success, func() error {
			if m := metricsPort(t, "/metrics"); !strings.Contains(m, "jwe_webhook_key_config_last_reload_success "+success+"\n") {
				return errString("not yet: " + grepLines(m, "key_config_last_reload"))
			}
			return nil
		})
	}

	p := plaintext(t, "edits")
	kmsJWE := encryptTo(t, kmsRecipient, p, harness.Scope{Namespace: ns})
	s := newSecret(ns, "kms")
	s.StringData = map[string]string{"password": kmsJWE}
	mustApply(t, s) // the content key is now cached

	if err := os.WriteFile(path, []byte("keys: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitReload("0")
	if r := metricsPort(t, "/readyz"); !strings.HasPrefix(r, "ok\n") || !strings.Contains(r, "does not build") {
		t.Errorf("/readyz with a broken key configuration: %q, want ok and a line naming the file", r)
	}
	l := newSecret(ns, "local")
	l.StringData = map[string]string{"password": encrypt(t, p, harness.Scope{Namespace: ns})}
	mustApply(t, l)
	assertStored(t, ns, "local", map[string]string{"password": p})

	if m := metricsPort(t, "/metrics"); !strings.Contains(m, "jwe_webhook_cache_entries 2\n") {
		t.Errorf("before removing a key: %s, want the two content keys of this test", grepLines(m, "cache_entries"))
	}
	write(local) // the Cloud KMS key removed
	waitReload("1")
	if m := metricsPort(t, "/metrics"); !strings.Contains(m, "jwe_webhook_cache_entries 1\n") {
		t.Errorf("after removing a key: %s, want only the local key's content key", grepLines(m, "cache_entries"))
	}
	again := newSecret(ns, "kms-again")
	again.StringData = map[string]string{"password": kmsJWE}
	_, err := apply(t, again)
	assertDenied(t, err, "password", p, kmsJWE)
	assertAbsent(t, ns, "kms-again")
}

type errString string

func (e errString) Error() string { return string(e) }
