package e2e_test

import (
	"strings"
	"testing"

	"github.com/jwe-webhook/jwe-webhook/test/e2e/harness"
)

// TestDenials applies Secrets holding JWEs the webhook cannot or must not
// decrypt. kubectl apply must fail with the denial's reason (its HTTP code, as
// kubectl shows it) and a message naming the data key and neither the value
// nor the plaintext, and nothing may be stored.
func TestDenials(t *testing.T) {
	ns, other := newNamespace(t), newNamespace(t)
	otherKey, err := harness.NewRSAKeyPair(t.TempDir(), "other")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		namespace string // where the Secret is applied
		// jwe returns the value for data key "password".
		jwe func(t *testing.T, p string) string
		// good adds a second, valid JWE value: nothing may be stored half
		// decrypted.
		good bool
		// reason is the denial's reason: BadRequest (400) for a value that
		// does not decrypt, Forbidden (403) for one that may not be used here.
		reason string
	}{{
		name:      "tampered",
		reason:    "BadRequest",
		namespace: ns,
		jwe: func(t *testing.T, p string) string {
			return tamperPart(t, encrypt(t, p, harness.Scope{Namespace: ns, Name: "tampered"}), partTag)
		},
	}, {
		name:      "tampered-beside-a-good-value",
		reason:    "BadRequest",
		namespace: ns,
		good:      true,
		jwe: func(t *testing.T, p string) string {
			return tamperPart(t, encrypt(t, p, harness.Scope{Namespace: ns, Name: "tampered-beside-a-good-value"}), partTag)
		},
	}, {
		name:      "namespace-scope-in-another-namespace",
		reason:    "Forbidden",
		namespace: other,
		jwe: func(t *testing.T, p string) string {
			return encrypt(t, p, harness.Scope{Namespace: ns})
		},
	}, {
		name:      "strict-scope-in-another-namespace",
		reason:    "Forbidden",
		namespace: other,
		jwe: func(t *testing.T, p string) string {
			return encrypt(t, p, harness.Scope{Namespace: ns, Name: "strict-scope-in-another-namespace"})
		},
	}, {
		name:      "strict-scope-under-another-name",
		reason:    "Forbidden",
		namespace: ns,
		jwe: func(t *testing.T, p string) string {
			return encrypt(t, p, harness.Scope{Namespace: ns, Name: "the-intended-name"})
		},
	}, {
		name:      "unknown-key",
		reason:    "Forbidden",
		namespace: ns,
		jwe: func(t *testing.T, p string) string {
			return encryptTo(t, otherKey.PublicFile, p, harness.Scope{Namespace: ns, Name: "unknown-key"})
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := plaintext(t, "denied")
			jwe := tt.jwe(t, p)
			s := newSecret(tt.namespace, tt.name)
			s.StringData = map[string]string{"password": jwe}
			if tt.good {
				s.StringData["a-good-one"] = encrypt(t, plaintext(t, "good"), harness.Scope{Namespace: tt.namespace, Name: tt.name})
			}
			_, err := apply(t, s)
			msg := assertDenied(t, err, "password", p, jwe)
			if want := "Error from server (" + tt.reason + ")"; !strings.Contains(msg, want) {
				t.Errorf("kubectl apply error does not say %q:\n%s", want, msg)
			}
			assertAbsent(t, tt.namespace, tt.name)
		})
	}
}
