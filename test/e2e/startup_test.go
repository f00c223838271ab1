package e2e_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/jwe-webhook/jwe-webhook/test/e2e/harness"
)

// TestVaultDownAtStart starts the webhook while Vault refuses connections.
// It must start and be ready with every key: local and Cloud KMS values are
// decrypted, Vault values refused as "not reached yet" and reported by
// /readyz and a metric, until Vault is back, which the webhook notices by
// itself, without a restart.
func TestVaultDownAtStart(t *testing.T) {
	ns := newNamespace(t)
	p := plaintext(t, "local")
	vaultJWE := encryptTo(t, vaultRecipient, p, harness.Scope{Namespace: ns, Name: "vault"}) // jwe-encrypt asks Vault for the key
	restartWebhookOnFailure(t)
	keys.StopVault()
	vaultUp := false
	t.Cleanup(func() {
		if !vaultUp {
			if err := keys.StartVault(); err != nil {
				t.Errorf("start the fake Vault again: %v", err)
			}
		}
	})
	cluster.StopWebhook()
	if err := cluster.StartWebhook(t.Context()); err != nil {
		t.Fatalf("the webhook did not start with Vault down: %v", err)
	}
	if err := cluster.WaitWebhookCalled(t.Context()); err != nil {
		t.Fatal(err)
	}

	readyz := metricsPort(t, "/readyz")
	if !strings.HasPrefix(readyz, "ok\n") || !strings.Contains(readyz, "(vault): key service not reached yet") {
		t.Errorf("/readyz with Vault down:\n%s\nwant ok with a line on the Vault keys", readyz)
	}
	if m := metricsPort(t, "/metrics"); !strings.Contains(m, `jwe_webhook_key_service_reached{kid="vault://`+vaultMount+"/"+vaultKey+`",provider="vault"} 0`) {
		t.Errorf("metrics do not report the Vault key as not reached:\n%s", grepLines(m, "key_service_reached"))
	}

	s := newSecret(ns, "local-and-kms")
	s.StringData = map[string]string{
		"local": encrypt(t, p, harness.Scope{Namespace: ns, Name: "local-and-kms"}),
		"kms":   encryptTo(t, kmsRecipient, p, harness.Scope{Namespace: ns, Name: "local-and-kms"}),
	}
	mustApply(t, s)
	assertStored(t, ns, "local-and-kms", map[string]string{"local": p, "kms": p})

	v := newSecret(ns, "vault")
	v.StringData = map[string]string{"password": vaultJWE}
	_, err := apply(t, v)
	msg := assertDenied(t, err, "password", p, vaultJWE)
	if !strings.Contains(msg, "key service not reached yet") || !strings.Contains(msg, "503") && !strings.Contains(msg, "ServiceUnavailable") {
		t.Errorf("Vault value with Vault down: want a 503 saying the key service was not reached yet:\n%s", msg)
	}
	assertAbsent(t, ns, "vault")

	if err := keys.StartVault(); err != nil {
		t.Fatal(err)
	}
	vaultUp = true
	eventually(t, recoverTimeout, "the webhook to reach Vault", func() error {
		_, err := apply(t, v)
		return err
	})
	assertStored(t, ns, "vault", map[string]string{"password": p})
	if readyz := metricsPort(t, "/readyz"); readyz != "ok\n" {
		t.Errorf("/readyz with Vault back: %q", readyz)
	}
}

// metricsPort returns the body of a GET of path on the webhook's metrics
// port, which must answer 200.
func metricsPort(t *testing.T, path string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(context.WithoutCancel(t.Context()), http.MethodGet, cluster.MetricsURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}
