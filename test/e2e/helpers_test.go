package e2e_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/jwe-webhook/jwe-webhook/test/e2e/harness"
)

// skipAnnotation, set to "true" on a Secret, makes the webhook leave it alone.
const skipAnnotation = "jwe-webhook.io/skip"

// Secret is the part of a v1 Secret the tests write and read. Data values
// are raw bytes (base64 in JSON and YAML, as in a manifest).
type Secret struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name            string            `json:"name"`
		Namespace       string            `json:"namespace"`
		Annotations     map[string]string `json:"annotations,omitempty"`
		ResourceVersion string            `json:"resourceVersion,omitempty"`
	} `json:"metadata"`
	Type       string            `json:"type,omitempty"`
	Data       map[string][]byte `json:"data,omitempty"`
	StringData map[string]string `json:"stringData,omitempty"`
}

func newSecret(namespace, name string) *Secret {
	s := &Secret{APIVersion: "v1", Kind: "Secret", Type: "Opaque"}
	s.Metadata.Name, s.Metadata.Namespace = name, namespace
	return s
}

var namespaces atomic.Int64

// newNamespace creates a namespace of its own for a test. Namespaces are not
// deleted: without kube-controller-manager they would stay Terminating.
func newNamespace(t *testing.T) string {
	t.Helper()
	return newNamespaceWithPrefix(t, "e2e-")
}

// newNamespaceWithPrefix is newNamespace for a name starting with prefix.
func newNamespaceWithPrefix(t *testing.T, prefix string) string {
	t.Helper()
	ns := fmt.Sprintf("%s%d", prefix, namespaces.Add(1))
	kubectl(t, "create", "namespace", ns)
	return ns
}

// kubectl runs kubectl and fails the test if it fails.
func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := cluster.Kubectl(t.Context(), nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// apply writes s to a manifest file and runs `kubectl apply -f` on it with
// extra flags, as a CI pipeline would. On failure it returns kubectl's stderr in
// the error.
func apply(t *testing.T, s *Secret, flags ...string) (string, error) {
	t.Helper()
	return applyFile(t.Context(), writeManifest(t, s), flags...)
}

// writeManifest writes s to a manifest file in a directory of the test's and
// returns its path.
func writeManifest(t *testing.T, s *Secret) string {
	t.Helper()
	manifest, err := yaml.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), s.Metadata.Name+".yaml")
	if err := os.WriteFile(path, manifest, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// applyFile runs `kubectl apply -f path` with extra flags. It needs no
// testing.T, so a goroutine of a test may call it.
func applyFile(ctx context.Context, path string, flags ...string) (string, error) {
	return cluster.Kubectl(ctx, nil, append([]string{"apply", "-f", path}, flags...)...)
}

// mustApply is apply that fails the test when kubectl fails.
func mustApply(t *testing.T, s *Secret, flags ...string) {
	t.Helper()
	if _, err := apply(t, s, flags...); err != nil {
		t.Fatalf("kubectl apply: %v", err)
	}
}

// getSecret reads a Secret through the API with kubectl; ok is false when it
// does not exist.
func getSecret(t *testing.T, namespace, name string) (s *Secret, ok bool) {
	t.Helper()
	out, err := cluster.Kubectl(t.Context(), nil, "get", "secret", "-n", namespace, name, "-o", "json")
	var cerr *harness.CommandError
	if errors.As(err, &cerr) && strings.Contains(cerr.Stderr, "NotFound") {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	s = new(Secret)
	if err := json.Unmarshal([]byte(out), s); err != nil {
		t.Fatalf("decode kubectl get output: %v\n%s", err, out)
	}
	return s, true
}

// etcdValue reads the Secret's bytes straight from etcd.
func etcdValue(t *testing.T, namespace, name string) ([]byte, bool) {
	t.Helper()
	v, ok, err := cluster.EtcdGet(t.Context(), harness.SecretKey(namespace, name))
	if err != nil {
		t.Fatal(err)
	}
	return v, ok
}

// plaintext returns a fresh secret value and checks, when the test ends, that
// it never reached the webhook's log, neither raw nor base64-encoded.
func plaintext(t *testing.T, label string) string {
	t.Helper()
	b := make([]byte, 12)
	rand.Read(b) // never fails (Go 1.24+)
	p := label + "-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		log, err := os.ReadFile(cluster.WebhookLog)
		if err != nil {
			t.Errorf("read webhook log: %v", err)
			return
		}
		for _, form := range []string{p, base64.StdEncoding.EncodeToString([]byte(p))} {
			if bytes.Contains(log, []byte(form)) {
				t.Errorf("webhook log %s contains the plaintext %q (as %q)", cluster.WebhookLog, p, form)
			}
		}
	})
	return p
}

// encrypt encrypts value with jwe-encrypt to the webhook's key.
func encrypt(t *testing.T, value string, scope harness.Scope) string {
	t.Helper()
	return encryptTo(t, cluster.Key.PublicFile, value, scope)
}

func encryptTo(t *testing.T, recipient, value string, scope harness.Scope) string {
	t.Helper()
	jwe, err := cluster.Encrypt(t.Context(), recipient, []byte(value), scope)
	if err != nil {
		t.Fatal(err)
	}
	return jwe
}

// assertStored checks that the Secret holds want through the API and that etcd
// holds it encrypted at rest, without any of the plaintexts in the clear.
func assertStored(t *testing.T, namespace, name string, want map[string]string) *Secret {
	t.Helper()
	s, ok := getSecret(t, namespace, name)
	if !ok {
		t.Fatalf("secret %s/%s does not exist", namespace, name)
	}
	got := map[string]string{}
	for k, v := range s.Data {
		got[k] = string(v)
	}
	if !maps.Equal(got, want) {
		t.Errorf("secret %s/%s data through the API = %q, want %q", namespace, name, got, want)
	}
	raw, ok := etcdValue(t, namespace, name)
	if !ok {
		t.Fatalf("etcd has no key %s", harness.SecretKey(namespace, name))
	}
	if !bytes.HasPrefix(raw, []byte("k8s:enc:secretbox:v1:")) {
		t.Errorf("etcd value of %s/%s is not encrypted at rest; starts with %q", namespace, name, head(raw))
	}
	for k, v := range want {
		// Values too short to be found only by accident are not looked for.
		if len(v) >= 8 && bytes.Contains(raw, []byte(v)) {
			t.Errorf("etcd value of %s/%s contains the plaintext of data key %q", namespace, name, k)
		}
	}
	return s
}

// assertAbsent checks that the Secret exists neither in the API nor in etcd.
func assertAbsent(t *testing.T, namespace, name string) {
	t.Helper()
	if _, ok := getSecret(t, namespace, name); ok {
		t.Errorf("secret %s/%s exists through the API, want none", namespace, name)
	}
	if _, ok := etcdValue(t, namespace, name); ok {
		t.Errorf("etcd has key %s, want none", harness.SecretKey(namespace, name))
	}
}

func head(b []byte) []byte {
	return b[:min(len(b), 32)]
}
