package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
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
// an unset variable falls back to the program in E2E_BIN_DIR, under its plain
// name or the versioned name `make tools` gives it (kube-apiserver-v1.35.0).
// The error names every program that is not an executable file.
func BinariesFromEnv() (Binaries, error) {
	dir := os.Getenv("E2E_BIN_DIR")
	var missing []string
	find := func(env, name string) string {
		path := os.Getenv(env)
		if path == "" && dir != "" {
			var err error
			if path, err = inDir(dir, name); err != nil {
				missing = append(missing, fmt.Sprintf("%s (set %s: %v)", name, env, err))
				return ""
			}
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

// inDir returns name in dir, or else its one versioned build in dir
// (name-v1.2.3, as `make tools` names it). Several versions are an error: the
// caller must choose.
func inDir(dir, name string) (string, error) {
	plain := filepath.Join(dir, name)
	if _, err := os.Stat(plain); err == nil {
		return plain, nil
	}
	matches, err := filepath.Glob(filepath.Join(dir, name+"-v*"))
	if err != nil {
		return "", err
	}
	matches = slices.DeleteFunc(matches, func(m string) bool { return strings.HasSuffix(m, ".tmp") })
	switch len(matches) {
	case 0:
		return "", fmt.Errorf("E2E_BIN_DIR %q has neither %s nor %s-v*", dir, name, name)
	case 1:
		return matches[0], nil
	}
	return "", fmt.Errorf("E2E_BIN_DIR %q has several versions: %s", dir, strings.Join(matches, ", "))
}
