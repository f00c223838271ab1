package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// listSecrets reads every Secret of namespace through the API with one
// kubectl call, by name.
func listSecrets(t *testing.T, namespace string) map[string]*Secret {
	t.Helper()
	out := kubectl(t, "get", "secrets", "-n", namespace, "-o", "json")
	var list struct {
		Items []*Secret `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("decode kubectl get output: %v", err)
	}
	secrets := map[string]*Secret{}
	for _, s := range list.Items {
		secrets[s.Metadata.Name] = s
	}
	return secrets
}

// assertDenied checks that err is kubectl's report of a denial whose message
// names data key dataKey and contains no part of any of the secrets (values
// and plaintexts). It returns kubectl's stderr.
func assertDenied(t *testing.T, err error, dataKey string, secrets ...string) string {
	t.Helper()
	if err == nil {
		t.Fatal("kubectl apply succeeded, want a denial")
	}
	msg := err.Error()
	if !strings.Contains(msg, fmt.Sprintf("data key %q", dataKey)) {
		t.Errorf("kubectl apply error does not name data key %q:\n%s", dataKey, msg)
	}
	for _, secret := range secrets {
		for _, f := range fragments(secret) {
			if strings.Contains(msg, f) {
				t.Errorf("kubectl apply error contains %q, part of a value or plaintext:\n%s", f, msg)
				break
			}
		}
	}
	return msg
}

// longRun matches the parts of a value worth looking for in a message: a
// header, key, IV, ciphertext or tag in base64url, or a plaintext.
var longRun = regexp.MustCompile(`[A-Za-z0-9_-]{20,}`)

// fragments returns what a message must not contain of secret: its long
// base64url runs, or the whole of a short secret.
func fragments(secret string) []string {
	if f := longRun.FindAllString(secret, -1); len(f) > 0 {
		return f
	}
	if len(secret) >= 8 {
		return []string{secret}
	}
	return nil
}

// hangGuard is how long applyGuarded lets kubectl run: far longer than any
// answer takes (the apiserver gives up on the webhook after its
// timeoutSeconds), it only turns a hang into a failure, whatever the load.
const hangGuard = 2 * time.Minute

// applyGuarded is apply that kills kubectl after hangGuard.
func applyGuarded(t *testing.T, s *Secret, flags ...string) error {
	t.Helper()
	path := writeManifest(t, s)
	ctx, cancel := context.WithTimeout(t.Context(), hangGuard)
	defer cancel()
	_, err := applyFile(ctx, path, flags...)
	if ctx.Err() != nil {
		t.Errorf("kubectl apply did not return within %v: killed", hangGuard)
	}
	return err
}

// eventually calls check until it returns nil, and fails the test when it
// still does not after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return
		}
		select {
		case <-deadline.C:
			t.Fatalf("wait for %s (%v): %v", what, timeout, err)
		case <-t.Context().Done():
			t.Fatalf("wait for %s: %v", what, t.Context().Err())
		case <-tick.C:
		}
	}
}
