package e2e_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jwe-webhook/jwe-webhook/test/e2e/harness"
)

// securityDoc holds the audit policy the suite's apiserver runs with.
const securityDoc = "../../docs/security.md"

// auditPolicy returns the audit policy docs/security.md tells administrators
// to use, so that the suite checks what the guide promises.
func auditPolicy() ([]byte, error) {
	doc, err := os.ReadFile(securityDoc)
	if err != nil {
		return nil, err
	}
	m := regexp.MustCompile("(?s)```yaml\n(apiVersion: audit.k8s.io/v1\n.*?)```").FindSubmatch(doc)
	if m == nil {
		return nil, fmt.Errorf("%s shows no audit.k8s.io/v1 policy", securityDoc)
	}
	return m[1], nil
}

// auditEvent is the part of an audit.k8s.io/v1 Event the test reads.
type auditEvent struct {
	Level     string `json:"level"`
	Stage     string `json:"stage"`
	Verb      string `json:"verb"`
	ObjectRef struct {
		Resource, Namespace, Name string
	} `json:"objectRef"`
	Annotations map[string]string `json:"annotations"`
}

// TestAuditPolicy writes a JWE Secret under the audit policy of
// docs/security.md and checks what the guide says of its event: Metadata
// level, the webhook's counts and key IDs, that it mutated, but not its patch;
// and that the audit log holds no plaintext.
func TestAuditPolicy(t *testing.T) {
	if cluster.AuditLog == "" {
		t.Fatal("the suite's apiserver runs without an audit log")
	}
	ns := newNamespace(t)
	p := plaintext(t, "audited")
	s := newSecret(ns, "audited")
	s.StringData = map[string]string{"password": encrypt(t, p, harness.Scope{Namespace: ns, Name: "audited"})}
	if _, err := apply(t, s); err != nil {
		t.Fatal(err)
	}

	var ev auditEvent
	eventually(t, time.Minute, "the audit event of the Secret's create", func() error {
		data, err := os.ReadFile(cluster.AuditLog)
		if err != nil {
			return err
		}
		lines := bufio.NewScanner(bytes.NewReader(data))
		lines.Buffer(nil, 1<<20)
		for lines.Scan() {
			var e auditEvent
			if json.Unmarshal(lines.Bytes(), &e) == nil && e.Stage == "ResponseComplete" && e.Verb == "create" &&
				e.ObjectRef.Resource == "secrets" && e.ObjectRef.Namespace == ns && e.ObjectRef.Name == "audited" {
				ev = e
				return nil
			}
		}
		return errors.New("not logged yet")
	})
	if ev.Level != "Metadata" {
		t.Errorf("the Secret's event is at level %q, want Metadata", ev.Level)
	}
	if got := ev.Annotations["secrets.jwe-webhook.io/decrypted-values"]; got != "1" {
		t.Errorf("annotation secrets.jwe-webhook.io/decrypted-values = %q, want 1; annotations %v", got, ev.Annotations)
	}
	if ev.Annotations["secrets.jwe-webhook.io/key-ids"] == "" {
		t.Errorf("no secrets.jwe-webhook.io/key-ids annotation: %v", ev.Annotations)
	}
	var mutated bool
	for k := range ev.Annotations {
		mutated = mutated || strings.HasPrefix(k, "mutation.webhook.admission.k8s.io/")
		if strings.HasPrefix(k, "patch.webhook.admission.k8s.io/") {
			t.Errorf("the event holds the webhook's patch (%s), which carries the plaintext", k)
		}
	}
	if !mutated {
		t.Errorf("no mutation.webhook.admission.k8s.io annotation: %v", ev.Annotations)
	}

	log, err := os.ReadFile(cluster.AuditLog)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{p, base64.StdEncoding.EncodeToString([]byte(p))} {
		if bytes.Contains(log, []byte(leak)) {
			t.Errorf("the audit log holds the plaintext (%q)", leak)
		}
	}
}
