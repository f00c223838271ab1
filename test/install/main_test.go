// Package install_test checks what users install and operate with: the Helm
// chart (charts/jwe-webhook) against the kustomize tree (manifests/), the
// monitoring rules and dashboard against the webhook's real /metrics, and
// every rendering against a real kube-apiserver. The control plane is the
// e2e suite's harness; `make test` builds its programs and passes their
// paths. Without them the tests that need it are skipped (failed under CI).
package install_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jwe-webhook/jwe-webhook/test/e2e/harness"
)

// Paths of the repository's install artefacts, from this directory.
const (
	chartDir        = "../../charts/jwe-webhook"
	manifestsDir    = "../../manifests"
	webhookManifest = manifestsDir + "/base/mutatingwebhookconfiguration.yaml"
)

// cluster is the control plane shared by the tests that need one; nil when
// its programs are missing outside CI.
var cluster *harness.Cluster

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	bins, err := harness.BinariesFromEnv()
	if err != nil {
		if ci := os.Getenv("CI"); ci != "" && ci != "false" {
			fmt.Fprintf(os.Stderr, "FAIL: install: CI=%s and %v\n", ci, err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "install: the tests that need a control plane are skipped: %v\n", err)
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "jwe-webhook-install-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: install: %v\n", err)
		return 1
	}
	start := time.Now()
	// A second local key makes the harness run the webhook with a key
	// configuration file, so that the file's reload metrics exist too.
	second, err := harness.NewRSAKeyPair(dir, "second-key")
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: install: %v\n", err)
		return 1
	}
	c, err := harness.Start(context.Background(), harness.Config{
		Dir:             dir,
		Bins:            bins,
		WebhookManifest: webhookManifest,
		ExtraKeys:       []any{map[string]any{"provider": "local", "local": map[string]any{"file": second.PrivateFile}}},
		Logf: func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "install %6.2fs: %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: install: start the control plane (files kept in %s): %v\n", dir, err)
		return 1
	}
	cluster = c
	return c.RunTests(m, "install tests")
}

// needCluster skips t when there is no control plane.
func needCluster(t *testing.T) *harness.Cluster {
	t.Helper()
	if cluster == nil {
		t.Skip("no control plane: run `make test`, or set the programs' paths (see test/e2e/README.md)")
	}
	return cluster
}
