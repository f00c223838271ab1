package e2e_test

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/jwe-webhook/jwe-webhook/test/e2e/harness"
)

// reviewOf is an AdmissionReview creating Secret namespace/name with data, as
// the apiserver would send it.
func reviewOf(t *testing.T, namespace, name string, data map[string]string) []byte {
	t.Helper()
	s := newSecret(namespace, name)
	s.Data = map[string][]byte{}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	obj, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(map[string]any{
		"apiVersion": "admission.k8s.io/v1",
		"kind":       "AdmissionReview",
		"request": map[string]any{
			"uid":       "00000000-0000-0000-0000-000000000001",
			"kind":      map[string]string{"group": "", "version": "v1", "kind": "Secret"},
			"resource":  map[string]string{"group": "", "version": "v1", "resource": "secrets"},
			"namespace": namespace,
			"name":      name,
			"operation": "CREATE",
			"object":    json.RawMessage(obj),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// postReview sends body to the webhook's /mutate as a client presenting
// certs and returns the status and body, or the error of a refused handshake.
func postReview(t *testing.T, body []byte, certs ...tls.Certificate) (int, []byte, error) {
	t.Helper()
	client := cluster.WebhookClient(certs...)
	defer client.CloseIdleConnections()
	resp, err := client.Post(cluster.WebhookURL+"/mutate", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

func mustLoad(t *testing.T, p harness.CertPair) tls.Certificate {
	t.Helper()
	cert, err := p.Load()
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestOnlyTheAPIServerMayCall sends a review with a JWE that the webhook can
// decrypt straight to the webhook: only the apiserver's client certificate
// gets the plaintext back. Anyone else who reaches the port, with no
// certificate, one from another CA, or one from the right CA for another
// name, is refused without it: the webhook is no decryption oracle.
func TestOnlyTheAPIServerMayCall(t *testing.T) {
	ns := newNamespace(t)
	secret := plaintext(t, "oracle")
	body := reviewOf(t, ns, "copied", map[string]string{"password": encrypt(t, secret, harness.Scope{Namespace: ns})})

	dir := t.TempDir()
	otherCA, err := harness.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	otherCACert, err := otherCA.ClientCert(dir, "other-ca", harness.WebhookClientName)
	if err != nil {
		t.Fatal(err)
	}
	otherName, err := cluster.ClientCA.ClientCert(dir, "other-name", "ci-runner")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("apiserver", func(t *testing.T) {
		status, out, err := postReview(t, body, mustLoad(t, cluster.APIServerClientCert))
		if err != nil || status != http.StatusOK {
			t.Fatalf("status %d, error %v: %s", status, err, out)
		}
		var resp struct {
			Response struct {
				Patch []byte `json:"patch"`
			} `json:"response"`
		}
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatal(err)
		}
		// The patch holds the value base64-encoded, as Secret data.
		if !bytes.Contains(resp.Response.Patch, []byte(base64.StdEncoding.EncodeToString([]byte(secret)))) {
			t.Fatalf("the apiserver's certificate got no patch with the plaintext: %s", out)
		}
	})

	refused := []struct {
		name   string
		certs  []tls.Certificate
		status int // 0: the handshake is refused
	}{
		{"no certificate", nil, 0},
		{"another CA", []tls.Certificate{mustLoad(t, otherCACert)}, 0},
		{"another name", []tls.Certificate{mustLoad(t, otherName)}, http.StatusForbidden},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			status, out, err := postReview(t, body, tt.certs...)
			if tt.status == 0 && err == nil || tt.status != 0 && status != tt.status {
				t.Errorf("status %d, error %v; want %s", status, err, map[bool]string{true: "the handshake refused", false: http.StatusText(tt.status)}[tt.status == 0])
			}
			for _, leak := range []string{secret, base64.StdEncoding.EncodeToString([]byte(secret)), "patch"} {
				if strings.Contains(string(out), leak) {
					t.Errorf("response contains %q: %s", leak, out)
				}
			}
		})
	}
}

// TestMetrics scrapes the webhook's metrics port after a Secret was
// decrypted through the apiserver.
func TestMetrics(t *testing.T) {
	ns := newNamespace(t)
	secret := plaintext(t, "metrics")
	jwe := encrypt(t, secret, harness.Scope{Namespace: ns})
	s := newSecret(ns, "scraped")
	s.StringData = map[string]string{"password": jwe}
	mustApply(t, s)

	metricsPort(t, "/readyz")
	scrape := metricsPort(t, "/metrics")
	for _, want := range []string{
		`jwe_webhook_admission_reviews_total{operation="CREATE",result="patched"}`,
		`jwe_webhook_unwraps_total{kid=`,
		`jwe_webhook_serving_certificate_expiry_timestamp_seconds `,
		`jwe_webhook_build_info{`,
	} {
		if !strings.Contains(scrape, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	for _, leak := range []string{secret, base64.StdEncoding.EncodeToString([]byte(secret)), jwe[:40], ns} {
		if strings.Contains(scrape, leak) {
			t.Errorf("scrape contains %q", leak)
		}
	}
}
