package e2e_test

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEncryptedManifestApplies encrypts a whole multi-document manifest with
// jwe-encrypt -f -i, as a custodian would before committing it, and applies
// the file with kubectl as CI would: every value is stored in plaintext, the
// other kinds are untouched.
func TestEncryptedManifestApplies(t *testing.T) {
	ns := newNamespace(t)
	password, token, cert := plaintext(t, "password"), plaintext(t, "token"), plaintext(t, "cert")
	manifest := fmt.Sprintf(`# Two Secrets and a ConfigMap, as they sit on the custodian's machine.
apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: %[1]s
stringData:
  password: %[2]s   # rotated yearly
  user: hr-app
---
apiVersion: v1
kind: Secret
metadata:
  name: api
  namespace: %[1]s
data:
  token: %[3]s
  tls.crt: %[4]s
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: %[1]s
data:
  mode: production
`, ns, password, std64(token), std64(cert))
	path := filepath.Join(t.TempDir(), "secrets.yaml")
	if err := os.WriteFile(path, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.EncryptManifest(t.Context(), cluster.Key.PublicFile, path); err != nil {
		t.Fatal(err)
	}
	encrypted, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{password, token, cert, "hr-app", std64(token)} {
		if strings.Contains(string(encrypted), p) {
			t.Fatalf("the encrypted manifest still holds %q:\n%s", p, encrypted)
		}
	}
	if !strings.Contains(string(encrypted), "# rotated yearly") || !strings.Contains(string(encrypted), "mode: production") {
		t.Errorf("comments or other kinds were not kept:\n%s", encrypted)
	}

	if out, err := applyFile(t.Context(), path); err != nil {
		t.Fatalf("kubectl apply -f: %v\n%s", err, out)
	}
	assertStored(t, ns, "db", map[string]string{"password": password, "user": "hr-app"})
	assertStored(t, ns, "api", map[string]string{"token": token, "tls.crt": cert})
	if got := kubectl(t, "get", "configmap", "-n", ns, "settings", "-o", "jsonpath={.data.mode}"); got != "production" {
		t.Errorf("configmap data.mode = %q", got)
	}
}

func std64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
