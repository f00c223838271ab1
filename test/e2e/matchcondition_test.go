package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/jwe-webhook/jwe-webhook/test/e2e/harness"
)

// plainSecrets are Secrets without JWE values, as other tools write them: the
// matchConditions keep them out of the webhook's path.
func plainSecrets(ns string) []*Secret {
	opaque := newSecret(ns, "plain")
	opaque.StringData = map[string]string{"user": "admin", "password": "hunter2-plain", "empty": ""}
	helm := newSecret(ns, "sh.helm.release.v1.app.v1")
	helm.Type = "helm.sh/release.v1"
	helm.Data = map[string][]byte{"release": []byte("H4sIAAAAAAAC/+y9a3PbOJYw/FdQ+vB0z5YpUdTdTzm1bsfpeDpJe22n")}
	tls := newSecret(ns, "tls")
	tls.Type = "kubernetes.io/tls"
	tls.Data = map[string][]byte{
		"tls.crt": cluster.CA.PEM,
		"tls.key": []byte("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIHVTMadeUpForTheTestOnly\n-----END EC PRIVATE KEY-----\n"),
	}
	pull := newSecret(ns, "pull")
	pull.Type = "kubernetes.io/dockerconfigjson"
	pull.Data = map[string][]byte{".dockerconfigjson": []byte(`{"auths":{"registry.example":{"auth":"dTpw"}}}`)}
	return []*Secret{opaque, helm, tls, pull}
}

// want is what s holds once stored.
func want(s *Secret) map[string]string {
	m := map[string]string{}
	for k, v := range s.Data {
		m[k] = string(v)
	}
	for k, v := range s.StringData {
		m[k] = v
	}
	return m
}

// TestWebhookStoppedOnlyJWESecretsFail stops the webhook: Secrets without
// JWE values are still written, because the apiserver does not call the
// webhook for them, while Secrets with JWE values, one with a single leading
// space included, are refused (failurePolicy Fail) and nothing is stored.
func TestWebhookStoppedOnlyJWESecretsFail(t *testing.T) {
	ns := newNamespace(t)
	value := encrypt(t, plaintext(t, "stopped"), harness.Scope{Namespace: ns})
	cluster.StopWebhook()
	t.Cleanup(restartWebhook(t))

	for _, s := range plainSecrets(ns) {
		t.Run(s.Metadata.Name, func(t *testing.T) {
			mustApply(t, s)
			assertStored(t, ns, s.Metadata.Name, want(s))
		})
	}
	for name, v := range map[string]string{"jwe": value, "leading-space": " " + value} {
		t.Run(name, func(t *testing.T) {
			s := newSecret(ns, name)
			s.Data = map[string][]byte{"user": []byte("admin"), "password": []byte(v)}
			_, err := apply(t, s)
			if err == nil {
				t.Fatal("kubectl apply succeeded with the webhook stopped, want failurePolicy Fail to refuse it")
			}
			if !strings.Contains(err.Error(), "failed calling webhook") {
				t.Errorf("kubectl apply error does not say the webhook call failed:\n%v", err)
			}
			assertAbsent(t, ns, name)
		})
	}
}

// restartWebhook returns a cleanup that starts the webhook again and waits
// until the apiserver calls it.
func restartWebhook(t *testing.T) func() {
	return func() {
		ctx := context.Background() // t.Context is done in Cleanup
		if err := cluster.StartWebhook(ctx); err != nil {
			t.Fatalf("restart the webhook: %v", err)
		}
		if err := cluster.WaitWebhookCalled(ctx); err != nil {
			t.Fatalf("restarted webhook: %v", err)
		}
	}
}

// TestPlainSecretsNotSent creates and updates Secrets without JWE values
// while the webhook runs: its review counter does not move. A JWE Secret
// afterwards moves it, so the counter is the right one to watch.
func TestPlainSecretsNotSent(t *testing.T) {
	ns := newNamespace(t)
	before := reviews(t)
	for _, s := range plainSecrets(ns) {
		mustApply(t, s) // CREATE
		s.Metadata.Annotations = map[string]string{"changed": "yes"}
		if s.StringData != nil {
			s.StringData["password"] = "hunter3-plain"
		}
		mustApply(t, s) // UPDATE
		assertStored(t, ns, s.Metadata.Name, want(s))
	}
	skipped := newSecret(ns, "skipped")
	skipped.Metadata.Annotations = map[string]string{skipAnnotation: "true"}
	skipped.StringData = map[string]string{"token": encrypt(t, "someone else's", harness.Scope{})}
	mustApply(t, skipped)
	if after := reviews(t); after != before {
		t.Errorf("the webhook got %v reviews for Secrets without JWE values or annotated to be skipped, want none", after-before)
	}

	s := newSecret(ns, "jwe")
	s.StringData = map[string]string{"password": " " + encrypt(t, plaintext(t, "counted"), harness.Scope{Namespace: ns})}
	mustApply(t, s)
	if after := reviews(t); after <= before {
		t.Errorf("the webhook's review counter did not move for a JWE Secret (%v before, %v after)", before, after)
	}
}

// reviews is the sum of the webhook's jwe_webhook_admission_reviews_total
// over its labels, scraped from /metrics.
func reviews(t *testing.T) float64 {
	t.Helper()
	scrape := metricsPort(t, "/metrics")
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(scrape))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "jwe_webhook_admission_reviews_total{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		sum += v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return sum
}

// TestLargeSecretsWithinCELCost writes the largest plain Secrets, one value
// of almost 1 MiB and one of 20,000 data keys, with the webhook running: the
// apiserver evaluates the matchConditions within its CEL cost limit (an
// error there would refuse them), and does not call the webhook.
func TestLargeSecretsWithinCELCost(t *testing.T) {
	ns := newNamespace(t)
	big := map[string]string{"big": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("x"), 1<<20-16))}
	many := map[string]string{}
	for i := range 20000 {
		many["k"+strconv.Itoa(i)] = base64.StdEncoding.EncodeToString([]byte("plain-value"))
	}
	before := reviews(t)
	for name, data := range map[string]map[string]string{"one-large-value": big, "many-keys": many} {
		body, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]string{"name": name}, "data": data})
		if err != nil {
			t.Fatal(err)
		}
		code, resp, err := cluster.Post(t.Context(), "/api/v1/namespaces/"+ns+"/secrets", string(body))
		if err != nil {
			t.Fatal(err)
		}
		if code != http.StatusCreated {
			t.Errorf("%s: HTTP %d: %.300s", name, code, resp)
		}
	}
	if after := reviews(t); after != before {
		t.Errorf("the webhook got %v reviews for plain Secrets, want none", after-before)
	}
}
