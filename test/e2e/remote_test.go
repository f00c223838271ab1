package e2e_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jwe-webhook/jwe-webhook/test/e2e/harness"
)

// TestRemoteKeys applies Secrets whose values jwe-encrypt encrypted to a Cloud
// KMS key version and to a Vault transit key. The webhook process unwraps
// their content keys through the fakes in this process, and the apiserver
// stores the plaintext, encrypted at rest. Keys limited to other namespaces
// are refused before any key service call.
func TestRemoteKeys(t *testing.T) {
	ns, restricted := newNamespace(t), newNamespaceWithPrefix(t, restrictedPrefix)
	tests := []struct {
		name      string
		namespace string
		// recipients maps data keys to the recipient their value is
		// encrypted to.
		recipients map[string]string
		// wantKMS and wantVault are how many unwrap calls each fake must
		// receive.
		wantKMS, wantVault int
	}{
		{name: "gcpkms", namespace: ns, recipients: map[string]string{"password": kmsRecipient}, wantKMS: 1},
		{name: "vault", namespace: ns, recipients: map[string]string{"password": vaultRecipient}, wantVault: 1},
		{
			name: "local-gcpkms-and-vault", namespace: ns,
			recipients: map[string]string{"local": cluster.Key.PublicFile, "gcpkms": kmsRecipient, "vault": vaultRecipient},
			wantKMS:    1, wantVault: 1,
		},
		{
			name: "restricted-keys-in-their-namespace", namespace: restricted,
			recipients: map[string]string{"gcpkms": kmsRestrictedRecipient, "vault": vaultRestrictedRecipient},
			wantKMS:    1, wantVault: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scope := harness.Scope{Namespace: tt.namespace, Name: tt.name}
			s := newSecret(tt.namespace, tt.name)
			s.StringData = map[string]string{}
			want := map[string]string{}
			for key, recipient := range tt.recipients {
				want[key] = plaintext(t, key)
				s.StringData[key] = encryptTo(t, recipient, want[key], scope)
			}
			kms, vault := keys.decryptCalls()
			mustApply(t, s)
			assertStored(t, tt.namespace, tt.name, want)
			kms2, vault2 := keys.decryptCalls()
			if kms2-kms != tt.wantKMS || vault2-vault != tt.wantVault {
				t.Errorf("unwrap calls: Cloud KMS %d, Vault %d; want %d and %d", kms2-kms, vault2-vault, tt.wantKMS, tt.wantVault)
			}
		})
	}

	for _, tt := range []struct{ provider, recipient string }{
		{"gcpkms", kmsRestrictedRecipient},
		{"vault", vaultRestrictedRecipient},
	} {
		t.Run("restricted-key-in-another-namespace-"+tt.provider, func(t *testing.T) {
			name := "restricted-" + tt.provider
			p := plaintext(t, "restricted")
			jwe := encryptTo(t, tt.recipient, p, harness.Scope{Namespace: ns, Name: name})
			s := newSecret(ns, name)
			s.StringData = map[string]string{"password": jwe}
			kms, vault := keys.decryptCalls()
			_, err := apply(t, s)
			msg := assertDenied(t, err, "password", p, jwe)
			if !strings.Contains(msg, fmt.Sprintf("may not be used in namespace %q", ns)) || !strings.Contains(msg, "Error from server (Forbidden)") {
				t.Errorf("denial is not a Forbidden saying the key may not be used in namespace %s:\n%s", ns, msg)
			}
			if kms2, vault2 := keys.decryptCalls(); kms2 != kms || vault2 != vault {
				t.Errorf("a key service was called for a key the namespace may not use (Cloud KMS %d, Vault %d calls)", kms2-kms, vault2-vault)
			}
			assertAbsent(t, ns, name)
		})
	}
}
