package e2e_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/jwe-webhook/jwe-webhook/internal/kms/gcpkms/gcpkmstest"
	"github.com/jwe-webhook/jwe-webhook/test/e2e/harness"
)

// Deadlines that only turn a hang into a failure; none is a speed check.
const (
	// apiserverWebhookTimeout is the MutatingWebhookConfiguration's
	// timeoutSeconds.
	apiserverWebhookTimeout = 10 * time.Second
	// recoverTimeout bounds how long the webhook may take to use a key service
	// again once it is back (a gRPC client waits out a reconnect backoff).
	recoverTimeout = 90 * time.Second
	// fakeDelay is how long a slow fake holds every call: longer than the
	// webhook's key timeout, so only the webhook's own timer ends the call.
	fakeDelay = 30 * time.Second
)

// TestKeyServiceFaults breaks the fake Cloud KMS, Vault, AWS KMS and Key
// Vault in turn: down (refusing connections, or answering "unavailable"),
// slower than the webhook's key timeout and, for the clouds, refusing the
// webhook's identity. kubectl apply must fail in bounded time with a
// message naming the key service and the data key, store nothing, and succeed
// once the service is back.
func TestKeyServiceFaults(t *testing.T) {
	ns := newNamespace(t)
	tests := []struct {
		name      string
		provider  string // as the webhook names the key service
		recipient string
		// fault breaks the key service and returns what heals it.
		fault func() (heal func() error)
		slow  bool
	}{{
		name: "gcpkms-unavailable", provider: "gcpkms", recipient: kmsRecipient,
		fault: func() func() error {
			keys.kms.SetFaults(gcpkmstest.Faults{Code: codes.Unavailable})
			return func() error { keys.kms.SetFaults(gcpkmstest.Faults{}); return nil }
		},
	}, {
		name: "gcpkms-stopped", provider: "gcpkms", recipient: kmsRecipient,
		fault: func() func() error { keys.StopKMS(); return keys.StartKMS },
	}, {
		name: "gcpkms-slow", provider: "gcpkms", recipient: kmsRecipient, slow: true,
		fault: func() func() error {
			keys.kms.SetFaults(gcpkmstest.Faults{Delay: fakeDelay})
			return func() error { keys.kms.SetFaults(gcpkmstest.Faults{}); return nil }
		},
	}, {
		name: "vault-sealed", provider: "vault", recipient: vaultRecipient,
		fault: func() func() error {
			keys.vault.SetUnavailable(true)
			return func() error { keys.vault.SetUnavailable(false); return nil }
		},
	}, {
		name: "vault-stopped", provider: "vault", recipient: vaultRecipient,
		fault: func() func() error { keys.StopVault(); return keys.StartVault },
	}, {
		name: "vault-slow", provider: "vault", recipient: vaultRecipient, slow: true,
		fault: func() func() error {
			keys.vault.SetDelay(fakeDelay)
			return func() error { keys.vault.SetDelay(0); return nil }
		},
	}}
	tests = append(tests, cloudFaults()...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := plaintext(t, "fault")
			jwe := encryptTo(t, tt.recipient, p, harness.Scope{Namespace: ns, Name: tt.name})
			s := newSecret(ns, tt.name)
			s.StringData = map[string]string{"password": jwe}

			heal := sync.OnceValue(tt.fault())
			defer func() {
				if err := heal(); err != nil {
					t.Errorf("heal the key service: %v", err)
				}
			}()
			err := applyGuarded(t, s)
			msg := assertDenied(t, err, "password", p, jwe)
			// Naming the key service proves the denial is the webhook's own
			// answer, given within its --key-timeout, and not the
			// apiserver giving up on a webhook that did not answer.
			if !strings.Contains(msg, "("+tt.provider+")") && !strings.Contains(msg, "key service "+tt.provider) {
				t.Errorf("denial does not name key service %s:\n%s", tt.provider, msg)
			}
			if strings.Contains(msg, "failed calling webhook") {
				t.Errorf("the apiserver gave up on the webhook instead of getting its denial:\n%s", msg)
			}
			if tt.slow {
				// Usually "key service gcpkms did not answer in time: …
				// context deadline exceeded"; when the fake's own
				// DEADLINE_EXCEEDED answer beats the webhook's timer, Cloud
				// KMS's "deadline exceeded" status alone.
				if !strings.Contains(msg, "deadline exceeded") {
					t.Errorf("denial does not say the key service did not answer in time:\n%s", msg)
				}
			}
			assertAbsent(t, ns, tt.name)

			if heal() != nil {
				return // reported when deferred
			}
			eventually(t, recoverTimeout, "the webhook to decrypt with "+tt.provider+" again", func() error {
				_, err := apply(t, s)
				return err
			})
			assertStored(t, ns, tt.name, map[string]string{"password": p})
		})
	}
}

// TestWebhookKilledMidStream applies Secrets one by one while the webhook is
// killed with SIGKILL and started again. Each Secret must be either stored in
// plaintext (kubectl succeeded) or absent (kubectl failed): never stored with
// its ciphertext. Values come from all three key services, so the restarted
// webhook reconnects to each.
func TestWebhookKilledMidStream(t *testing.T) {
	ns := newNamespace(t)
	restartWebhookOnFailure(t)
	// The webhook is killed after killAfter applies and started again after
	// two more, so that at least one finds it down from start to end.
	const n, killAfter = 40, 10
	recipients := []string{cluster.Key.PublicFile, kmsRecipient, vaultRecipient}
	paths := make([]string, n)
	want := make([]string, n)
	for i := range paths {
		name := fmt.Sprintf("stream-%02d", i)
		want[i] = plaintext(t, "stream")
		s := newSecret(ns, name)
		s.StringData = map[string]string{"password": encryptTo(t, recipients[i%len(recipients)], want[i], harness.Scope{Namespace: ns, Name: name})}
		paths[i] = writeManifest(t, s)
	}

	errs, applied, done := applyStream(t, paths)
	defer func() { <-done }()
	waitApplied(t, applied, killAfter)
	cluster.KillWebhook()
	killed := applied.Load()
	waitApplied(t, applied, killed+2)
	if err := cluster.StartWebhook(t.Context()); err != nil {
		t.Fatalf("restart the webhook: %v", err)
	}
	<-done

	failed := 0
	stored := listSecrets(t, ns)
	for i, err := range errs {
		name := fmt.Sprintf("stream-%02d", i)
		s, ok := stored[name]
		switch {
		case err == nil && !ok:
			t.Errorf("%s: kubectl apply succeeded but the Secret does not exist", name)
		case err != nil && ok:
			t.Errorf("%s: kubectl apply failed but the Secret exists: %v", name, err)
		case ok && string(s.Data["password"]) != want[i]:
			t.Errorf("%s: stored value is not the plaintext (%d bytes, starts with %q)", name, len(s.Data["password"]), head(s.Data["password"]))
		case !ok:
			failed++
		}
	}
	t.Logf("webhook killed after %d applies; %d of %d applies refused", killed, failed, n)
	if failed == 0 {
		t.Error("no apply was refused, though one ran while the webhook was down")
	}

	if err := cluster.WaitWebhookCalled(t.Context()); err != nil {
		t.Fatalf("restarted webhook: %v", err)
	}
	name := "after-restart"
	s := newSecret(ns, name)
	p := plaintext(t, "after")
	s.StringData = map[string]string{"password": encryptTo(t, kmsRecipient, p, harness.Scope{Namespace: ns, Name: name})}
	mustApply(t, s)
	assertStored(t, ns, name, map[string]string{"password": p})
}

// TestServingCertReplacedMidStream replaces the webhook's serving certificate,
// as cert-manager renews it (a new certificate from the same CA, each file
// written to a temporary name and renamed into place), while Secrets are
// applied one by one. No apply may fail.
func TestServingCertReplacedMidStream(t *testing.T) {
	ns := newNamespace(t)
	p := plaintext(t, "reload")
	jwe := encrypt(t, p, harness.Scope{Namespace: ns})
	// n applies; the certificate is replaced after the first few, and at
	// least minAfter must follow once the webhook serves the new one.
	const n, replaceAfter, minAfter = 16, 3, 3
	paths := make([]string, n)
	for i := range paths {
		s := newSecret(ns, fmt.Sprintf("reload-%02d", i))
		s.StringData = map[string]string{"password": jwe}
		paths[i] = writeManifest(t, s)
	}
	errs, applied, done := applyStream(t, paths)
	defer func() { <-done }()

	waitApplied(t, applied, replaceAfter)
	newCert := replaceServingCert(t)
	eventually(t, time.Minute, "the webhook to serve the new certificate", func() error {
		served, err := servedCert(t.Context())
		if err == nil && !bytes.Equal(served, newCert) {
			err = errors.New("still the old certificate")
		}
		return err
	})
	served := applied.Load()
	<-done
	if n-served < minAfter {
		t.Errorf("only %d of %d applies came after the new certificate was served, want %d or more", n-served, n, minAfter)
	}
	stored := listSecrets(t, ns)
	for i, err := range errs {
		name := fmt.Sprintf("reload-%02d", i)
		if err != nil {
			t.Errorf("kubectl apply failed while the certificate was replaced: %v", err)
		} else if s, ok := stored[name]; !ok || string(s.Data["password"]) != p {
			t.Errorf("%s is not stored with its plaintext", name)
		}
	}
}

// applyStream applies the manifests one by one in a goroutine. errs[i] is
// apply i's outcome, to be read once done is closed; applied counts the
// applies done so far.
func applyStream(t *testing.T, paths []string) (errs []error, applied *atomic.Int64, done <-chan struct{}) {
	errs = make([]error, len(paths))
	applied = new(atomic.Int64)
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		for i, path := range paths {
			_, errs[i] = applyFile(t.Context(), path)
			applied.Add(1)
		}
	}()
	return errs, applied, ch
}

// waitApplied waits until applied reaches k.
func waitApplied(t *testing.T, applied *atomic.Int64, k int64) {
	t.Helper()
	eventually(t, time.Minute, fmt.Sprintf("%d applies", k), func() error {
		if got := applied.Load(); got < k {
			return fmt.Errorf("%d applied", got)
		}
		return nil
	})
}

// replaceServingCert issues a new serving certificate for the webhook from
// the cluster's CA and renames it, then its key, over the files the webhook
// serves from. It returns the new certificate, DER.
func replaceServingCert(t *testing.T) []byte {
	t.Helper()
	files := cluster.WebhookCert()
	// A directory beside the files, so that rename stays on one file system.
	tmp, err := os.MkdirTemp(filepath.Dir(files.CertFile), "new-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	pair, err := cluster.CA.ServingCert(tmp, "webhook")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(pair.CertFile, pair.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	for from, to := range map[string]string{pair.CertFile: files.CertFile, pair.KeyFile: files.KeyFile} {
		if err := os.Rename(from, to); err != nil {
			t.Fatal(err)
		}
	}
	return cert.Certificate[0]
}

// servedCert returns the certificate the webhook presents to a new
// connection, DER.
func servedCert(ctx context.Context) ([]byte, error) {
	var leaf []byte
	d := tls.Dialer{Config: &tls.Config{
		RootCAs: cluster.CA.Pool(),
		VerifyConnection: func(cs tls.ConnectionState) error {
			leaf = cs.PeerCertificates[0].Raw
			return nil
		},
	}}
	conn, err := d.DialContext(ctx, "tcp", strings.TrimPrefix(cluster.WebhookURL, "https://"))
	if conn != nil {
		conn.Close()
	}
	if leaf != nil {
		return leaf, nil // even if the handshake then failed, e.g. for want of a client certificate
	}
	return nil, err
}

// restartWebhookOnFailure makes sure, when the test ends, that the webhook
// runs and the apiserver calls it, for the tests after this one.
func restartWebhookOnFailure(t *testing.T) {
	t.Cleanup(func() {
		ctx := context.Background() // t.Context is done in Cleanup
		if cluster.WebhookHealthy(ctx) == nil {
			return
		}
		cluster.KillWebhook()
		if err := cluster.StartWebhook(ctx); err != nil {
			t.Errorf("restart the webhook: %v", err)
			return
		}
		if err := cluster.WaitWebhookCalled(ctx); err != nil {
			t.Errorf("restarted webhook: %v", err)
		}
	})
}
