package e2e_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jwe-webhook/jwe-webhook/test/e2e/harness"
)

// TestWebhookDown stops the webhook: with failurePolicy Fail a JWE Secret is
// refused and nothing is stored, while the namespaces the namespaceSelector
// excludes still accept Secrets. The webhook is restarted afterwards.
func TestWebhookDown(t *testing.T) {
	ns := newNamespace(t)
	cluster.StopWebhook()
	t.Cleanup(func() {
		if err := cluster.StartWebhook(context.Background()); err != nil { // t.Context is done in Cleanup
			t.Fatalf("restart the webhook: %v", err)
		}
		if err := cluster.WaitWebhookCalled(context.Background()); err != nil {
			t.Fatalf("restarted webhook: %v", err)
		}
	})

	s := newSecret(ns, "while-down")
	s.StringData = map[string]string{"password": encrypt(t, plaintext(t, "down"), harness.Scope{Namespace: ns, Name: "while-down"})}
	_, err := apply(t, s)
	if err == nil {
		t.Fatal("kubectl apply succeeded with the webhook down, want failurePolicy Fail to refuse it")
	}
	if !strings.Contains(err.Error(), "failed calling webhook") {
		t.Errorf("kubectl apply error does not say the webhook call failed:\n%v", err)
	}
	assertAbsent(t, ns, "while-down")

	for i, excluded := range []string{harness.WebhookNamespace, "kube-system"} {
		t.Run(excluded, func(t *testing.T) {
			name := fmt.Sprintf("excluded-%d", i)
			s := newSecret(excluded, name)
			s.StringData = map[string]string{"config": "plain value for " + excluded}
			mustApply(t, s)
			assertStored(t, excluded, name, map[string]string{"config": "plain value for " + excluded})
		})
	}
}
