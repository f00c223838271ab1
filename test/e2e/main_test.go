// Package e2e_test drives a real control plane (etcd, kube-apiserver with
// encryption at rest, the webhook binary) the way a CI pipeline does: kubectl
// apply of manifests on disk, then reads back through the API and straight from
// etcd. `make test-e2e` builds the programs and passes their paths.
package e2e_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jwe-webhook/jwe-webhook/internal/testkit"
	"github.com/jwe-webhook/jwe-webhook/test/e2e/harness"
)

// webhookManifest is the MutatingWebhookConfiguration the suite registers, as
// an administrator would, with clientConfig pointed at the local webhook.
const webhookManifest = "../../manifests/base/mutatingwebhookconfiguration.yaml"

// keyTimeout is the webhook's deadline for one key service call, shorter than
// its default (5s) so that the slow key service cases take little time.
const keyTimeout = 2 * time.Second

// certReloadInterval is how often the webhook checks its serving certificate
// files, short so that a replaced certificate is served soon.
const certReloadInterval = 500 * time.Millisecond

// cluster is shared by every test in the package: starting one takes seconds,
// and the tests use their own namespaces. Set once by TestMain.
var cluster *harness.Cluster

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	bins, err := harness.BinariesFromEnv()
	if err != nil {
		if testkit.InCI() {
			fmt.Fprintf(os.Stderr, "FAIL: e2e: CI=%s and %v\n", os.Getenv("CI"), err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "SKIP: e2e: every test skipped (with CI set this fails): %v\n", err)
		return 0
	}
	dir, err := os.MkdirTemp("", "jwe-webhook-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: e2e: %v\n", err)
		return 1
	}
	start := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "e2e %6.2fs: %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	ks, err := startKeyServices(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: e2e: start the fake key services: %v\n", err)
		return 1
	}
	defer ks.Close()
	logf("fake Cloud KMS on %s, fake Vault on %s", ks.kmsAddr, ks.vaultURL)
	keys = ks
	cs, err := startCloudServices(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: e2e: start the fake cloud key services: %v\n", err)
		return 1
	}
	defer cs.Close()
	logf("%s", cs)
	cloud = cs
	policy, err := auditPolicy()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: e2e: %v\n", err)
		return 1
	}
	c, err := harness.Start(context.Background(), harness.Config{
		Dir:             dir,
		Bins:            bins,
		WebhookManifest: webhookManifest,
		WebhookArgs: []string{
			"--log-level", "debug",
			"--key-timeout", keyTimeout.String(),
			"--cert-reload-interval", certReloadInterval.String(),
		},
		ExtraKeys:   append(ks.KeyConfig(), cs.KeyConfig()...),
		EncryptEnv:  append(ks.EncryptEnv(), cs.EncryptEnv()...),
		AuditPolicy: policy,
		Logf:        logf,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: e2e: start the control plane (files kept in %s): %v\n", dir, err)
		return 1
	}
	logf("control plane ready")
	cluster = c
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "e2e failed; logs and certificates kept in %s\n%s", dir, c.Tails(60))
	}
	c.Stop()
	if code == 0 {
		os.RemoveAll(dir)
	}
	return code
}
