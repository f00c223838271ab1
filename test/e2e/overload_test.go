package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jwe-webhook/jwe-webhook/internal/kms/gcpkms/gcpkmstest"
	"github.com/jwe-webhook/jwe-webhook/test/e2e/harness"
)

// TestLimits runs the webhook with room for one review in flight and two JWE
// values per Secret.
//
// It holds one review in a slow key service: a second kubectl apply is first
// refused with 429 and Retry-After, and kubectl, retrying on its own, stores
// the Secret once the first review is done; the first review is not
// disturbed. Then a Secret of three values is refused as BadRequest, naming
// the data key past the limit, and nothing is stored.
func TestLimits(t *testing.T) {
	// hold is how long the fake Cloud KMS holds each call: the window in
	// which the second apply must arrive. The slow review may make two calls
	// (public key, decrypt), both within --key-timeout.
	const hold = 2500 * time.Millisecond
	ns := newNamespace(t)
	restart := func(args ...string) {
		t.Helper()
		cluster.StopWebhook()
		if err := cluster.StartWebhook(context.Background(), args...); err != nil {
			t.Fatalf("restart the webhook: %v", err)
		}
		if err := cluster.WaitWebhookCalled(context.Background()); err != nil {
			t.Fatalf("restarted webhook: %v", err)
		}
	}
	restart("--max-reviews-in-flight", "1", "--max-values-per-secret", "2", "--key-timeout", "6500ms")
	t.Cleanup(func() {
		keys.kms.SetFaults(gcpkmstest.Faults{})
		restart()
	})
	logStart := fileSize(t, cluster.WebhookLog)

	slowValue := plaintext(t, "slow")
	slow := newSecret(ns, "slow")
	slow.StringData = map[string]string{"password": encryptTo(t, kmsRecipient, slowValue, harness.Scope{Namespace: ns, Name: "slow"})}
	fastValue := plaintext(t, "fast")
	fast := newSecret(ns, "fast")
	fast.StringData = map[string]string{"password": encrypt(t, fastValue, harness.Scope{Namespace: ns, Name: "fast"})}
	slowPath := writeManifest(t, slow)

	keys.kms.SetFaults(gcpkmstest.Faults{Delay: hold})
	before := keys.kms.Calls().AsymmetricDecrypt
	slowErr := make(chan error, 1)
	go func() {
		_, err := applyFile(context.Background(), slowPath)
		slowErr <- err
	}()
	// The slow review holds the only place once its call reaches the fake,
	// and for hold after that.
	eventually(t, apiserverWebhookTimeout, "the slow Secret's review to reach the fake Cloud KMS", func() error {
		if keys.kms.Calls().AsymmetricDecrypt == before {
			return errors.New("no call yet")
		}
		return nil
	})

	out, err := apply(t, fast, "-v=6")
	if err != nil {
		t.Fatalf("kubectl apply of the second Secret failed; kubectl should have retried the 429:\n%v", err)
	}
	if err := <-slowErr; err != nil {
		t.Fatalf("kubectl apply of the slow Secret: %v", err)
	}
	assertStored(t, ns, "fast", map[string]string{"password": fastValue})
	assertStored(t, ns, "slow", map[string]string{"password": slowValue})

	log := fileTail(t, cluster.WebhookLog, logStart)
	if !bytes.Contains(log, []byte("review refused: too many reviews in flight")) {
		t.Errorf("the webhook never refused a review as overloaded; the test proved no retry. kubectl said:\n%s", out)
	}

	keys.kms.SetFaults(gcpkmstest.Faults{})
	many := newSecret(ns, "many")
	many.StringData = map[string]string{}
	for _, k := range []string{"a", "b", "c"} {
		many.StringData[k] = encrypt(t, plaintext(t, "many-"+k), harness.Scope{Namespace: ns, Name: "many"})
	}
	_, err = apply(t, many)
	for _, want := range []string{"Error from server (BadRequest)", `data key "c"`, "more than 2 JWE values"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("kubectl apply of three values: got %v, want an error containing %q", err, want)
		}
	}
	for _, v := range many.StringData {
		if err != nil && strings.Contains(err.Error(), v) {
			t.Errorf("the denial contains a value")
		}
	}
	assertAbsent(t, ns, "many")
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// fileTail returns path's contents from offset on.
func fileTail(t *testing.T, path string, offset int64) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b[min(offset, int64(len(b))):]
}
