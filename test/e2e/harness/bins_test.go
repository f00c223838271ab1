package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBinariesFromBinDir(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"etcd-v3.6.5", "kube-apiserver-v1.35.0", "kube-apiserver-v1.35.0.tmp", "kubectl-v1.35.0", "webhook", "jwe-encrypt"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, env := range []string{"ETCD", "KUBE_APISERVER", "KUBECTL", "WEBHOOK", "JWE_ENCRYPT"} {
		t.Setenv(env, "")
	}
	t.Setenv("E2E_BIN_DIR", dir)
	b, err := BinariesFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	want := Binaries{
		Etcd:          filepath.Join(dir, "etcd-v3.6.5"),
		KubeAPIServer: filepath.Join(dir, "kube-apiserver-v1.35.0"),
		Kubectl:       filepath.Join(dir, "kubectl-v1.35.0"),
		Webhook:       filepath.Join(dir, "webhook"),
		JWEEncrypt:    filepath.Join(dir, "jwe-encrypt"),
	}
	if b != want {
		t.Fatalf("got %+v\nwant %+v", b, want)
	}

	// Two versions: the caller must choose, and an unset program is named.
	if err := os.WriteFile(filepath.Join(dir, "kubectl-v1.34.2"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "webhook")); err != nil {
		t.Fatal(err)
	}
	_, err = BinariesFromEnv()
	for _, s := range []string{"kubectl (set KUBECTL", "several versions", "kubectl-v1.34.2", "webhook (set WEBHOOK", "neither webhook nor webhook-v*"} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("error %v does not contain %q", err, s)
		}
	}
}
