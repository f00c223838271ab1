package e2e_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestKeyRotation is a custodian's key rotation end to end. A manifest
// encrypted for Cloud KMS key A is rekeyed to key B with --remove of A
// (rekey opens A through Cloud KMS, as the value's kid names it); the
// webhook, restarted with B as its only key, stores the plaintext; lint
// --keys against the webhook's own /keys passes for the rekeyed manifest
// and fails for a copy still encrypted for A, which the webhook refuses.
func TestKeyRotation(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	password := plaintext(t, "password")
	kidA := kmsUnconfigured + "/cryptoKeyVersions/1"
	kidB := kmsKey + "/cryptoKeyVersions/1"
	manifest := fmt.Sprintf(`# The HR database, rotated yearly.
apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: %s
stringData:
  password: %s # the DBA's
  user: hr-app
`, ns, password)
	dir := t.TempDir()
	rotated, stale := filepath.Join(dir, "db.yaml"), filepath.Join(dir, "stale.yaml")
	if err := os.WriteFile(rotated, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.EncryptManifest(ctx, kmsUnconfiguredRecipient, rotated); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(rotated)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, before, 0o600); err != nil {
		t.Fatal(err)
	}

	// Rotate: B in, A out.
	_, stderr, err := cluster.JWEEncrypt(ctx, "rekey", "--add", kmsRecipient, "--remove", kidA, "-i", rotated)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr, "re-encrypted 2 values in 1 file") {
		t.Errorf("rekey said %q", stderr)
	}
	after, err := os.ReadFile(rotated)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(after), password) || !strings.Contains(string(after), "# The HR database, rotated yearly.") || !strings.Contains(string(after), "# the DBA's") {
		t.Fatalf("the rekeyed manifest lost its comments or holds the plaintext:\n%s", after)
	}
	inspect, _, err := cluster.JWEEncrypt(ctx, "inspect", rotated)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(inspect, "kid="+kidB+" scope=strict:"+ns+"/db") != 2 || strings.Contains(inspect, kidA) {
		t.Fatalf("after rekey, inspect says:\n%s", inspect)
	}

	// The webhook with B only (KeyConfig's first entry is kmsKey's).
	restartWithKeyConfig(t, []any{keys.KeyConfig()[0]})

	keySet := cluster.MetricsURL + "/keys"
	published, _, err := cluster.JWEEncrypt(ctx, "pubkey", "--jwks", keySet)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(published, `"kid"`) != 1 || !strings.Contains(published, `"kid": "`+kidB+`"`) {
		t.Fatalf("/keys of the webhook with key B only:\n%s", published)
	}
	if out, _, err := cluster.JWEEncrypt(ctx, "lint", "--keys", keySet, rotated); err != nil {
		t.Fatalf("lint --keys of the rekeyed manifest: %v\n%s", err, out)
	}
	out, _, err := cluster.JWEEncrypt(ctx, "lint", "--keys", keySet, stale)
	if err == nil || !strings.Contains(out, "no recipient is a key of the cluster's key set (kid \""+kidA+"\")") {
		t.Fatalf("lint --keys of the copy for A: %v\n%s", err, out)
	}

	if out, err := applyFile(ctx, rotated); err != nil {
		t.Fatalf("kubectl apply -f the rekeyed manifest: %v\n%s", err, out)
	}
	assertStored(t, ns, "db", map[string]string{"password": password, "user": "hr-app"})
	staleCopy := strings.ReplaceAll(string(before), "name: db", "name: stale")
	if err := os.WriteFile(stale, []byte(staleCopy), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := applyFile(ctx, stale); err == nil {
		t.Fatalf("the copy still encrypted for A was admitted:\n%s", out)
	}
	assertAbsent(t, ns, "stale")
}

// restartWithKeyConfig restarts the webhook with a key configuration of
// these entries only, and args, and when the test ends with its usual keys.
// It returns the configuration file's path.
func restartWithKeyConfig(t *testing.T, entries []any, args ...string) string {
	t.Helper()
	b, err := yaml.Marshal(map[string]any{"keys": entries})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "keys.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	restart := func(args ...string) error {
		ctx := context.Background() // t.Context is done in Cleanup
		cluster.StopWebhook()
		if err := cluster.StartWebhook(ctx, args...); err != nil {
			return fmt.Errorf("restart the webhook: %w", err)
		}
		return cluster.WaitWebhookCalled(ctx)
	}
	t.Cleanup(func() {
		if err := restart(); err != nil {
			t.Error(err)
		}
	})
	if err := restart(append([]string{"--key-config", path}, args...)...); err != nil {
		t.Fatal(err)
	}
	return path
}
