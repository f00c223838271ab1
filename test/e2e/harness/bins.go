package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Binaries are the programs the harness runs. The Makefile passes their paths in
// the environment; see BinariesFromEnv.
type Binaries struct {
	Etcd, KubeAPIServer, Kubectl string
	// Webhook and JWEEncrypt are the project's own programs.
	Webhook, JWEEncrypt string
}

// BinariesFromEnv reads ETCD, KUBE_APISERVER, KUBECTL, WEBHOOK and JWE_ENCRYPT;
// an unset variable falls back to the plain program name in E2E_BIN_DIR. The
// error names every program that is not an executable file.
func BinariesFromEnv() (Binaries, error) {
	dir := os.Getenv("E2E_BIN_DIR")
	var missing []string
	find := func(env, name string) string {
		path := os.Getenv(env)
		if path == "" && dir != "" {
			path = filepath.Join(dir, name)
		}
		if st, err := os.Stat(path); path == "" || err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			missing = append(missing, fmt.Sprintf("%s (set %s or E2E_BIN_DIR; now %q)", name, env, path))
			return ""
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return path
		}
		return abs
	}
	b := Binaries{
		Etcd:          find("ETCD", "etcd"),
		KubeAPIServer: find("KUBE_APISERVER", "kube-apiserver"),
		Kubectl:       find("KUBECTL", "kubectl"),
		Webhook:       find("WEBHOOK", "webhook"),
		JWEEncrypt:    find("JWE_ENCRYPT", "jwe-encrypt"),
	}
	if len(missing) > 0 {
		return b, fmt.Errorf("missing programs (run `make tools build`, or `make test-e2e`):\n  %s", strings.Join(missing, "\n  "))
	}
	return b, nil
}
