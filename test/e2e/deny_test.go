package e2e_test

import (
	"strings"
	"testing"

	"github.com/jwe-webhook/jwe-webhook/test/e2e/harness"
)

// TestDenials applies Secrets holding JWEs the webhook cannot or must not
// decrypt. kubectl apply must fail with a message naming the data key and
// neither the value nor the plaintext, and nothing may be stored.
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
	}{{
		name:      "tampered",
		namespace: ns,
		jwe: func(t *testing.T, p string) string {
			return tamper(t, encrypt(t, p, harness.Scope{Namespace: ns, Name: "tampered"}))
		},
	}, {
		name:      "tampered-beside-a-good-value",
		namespace: ns,
		good:      true,
		jwe: func(t *testing.T, p string) string {
			return tamper(t, encrypt(t, p, harness.Scope{Namespace: ns, Name: "tampered-beside-a-good-value"}))
		},
	}, {
		name:      "namespace-scope-in-another-namespace",
		namespace: other,
		jwe: func(t *testing.T, p string) string {
			return encrypt(t, p, harness.Scope{Namespace: ns})
		},
	}, {
		name:      "strict-scope-in-another-namespace",
		namespace: other,
		jwe: func(t *testing.T, p string) string {
			return encrypt(t, p, harness.Scope{Namespace: ns, Name: "strict-scope-in-another-namespace"})
		},
	}, {
		name:      "strict-scope-under-another-name",
		namespace: ns,
		jwe: func(t *testing.T, p string) string {
			return encrypt(t, p, harness.Scope{Namespace: ns, Name: "the-intended-name"})
		},
	}, {
		name:      "unknown-key",
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
			if err == nil {
				t.Fatal("kubectl apply succeeded, want a denial")
			}
			msg := err.Error()
			if !strings.Contains(msg, `data key "password"`) {
				t.Errorf("kubectl apply error does not name data key \"password\":\n%s", msg)
			}
			for what, secret := range map[string]string{"plaintext": p, "JWE": jwe} {
				if strings.Contains(msg, secret) {
					t.Errorf("kubectl apply error contains the %s:\n%s", what, msg)
				}
			}
			assertAbsent(t, tt.namespace, tt.name)
		})
	}
}

// tamper changes one character in the middle of a compact JWE's authentication
// tag, so the JWE still parses but no longer authenticates.
func tamper(t *testing.T, jwe string) string {
	t.Helper()
	parts := strings.Split(jwe, ".")
	if len(parts) != 5 || len(parts[4]) < 4 {
		t.Fatalf("not a compact JWE: %q", jwe)
	}
	tag := []byte(parts[4])
	i := len(tag) / 2 // not the last character, whose low bits may be padding
	if tag[i] == 'A' {
		tag[i] = 'B'
	} else {
		tag[i] = 'A'
	}
	parts[4] = string(tag)
	return strings.Join(parts, ".")
}
