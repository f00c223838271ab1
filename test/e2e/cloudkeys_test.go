package e2e_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/jwe-webhook/jwe-webhook/internal/kms/awskms/awskmstest"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/azkv/azkvtest"
	"github.com/jwe-webhook/jwe-webhook/test/e2e/harness"
)

// TestCloudKeys applies Secrets whose values jwe-encrypt encrypted to an AWS
// KMS key and to an Azure Key Vault key. The webhook unwraps their content
// keys through the fakes, reached by the real SDKs (SigV4; the Key Vault
// bearer challenge and a workload identity token), and the apiserver stores
// the plaintext. One Secret holds a value per key service and a value for
// both clouds at once.
func TestCloudKeys(t *testing.T) {
	ns := newNamespace(t)
	tests := []struct {
		name string
		// recipients maps data keys to the recipients their value is
		// encrypted to.
		recipients         map[string][]string
		wantAWS, wantAzure int // unwrap calls each fake must receive
	}{
		{name: "awskms", recipients: map[string][]string{"password": {awsRecipient}}, wantAWS: 1},
		{name: "azurekv", recipients: map[string][]string{"password": {cloud.azureRecipient()}}, wantAzure: 1},
		{
			name: "one-value-per-key-service", recipients: map[string][]string{
				"local": {cluster.Key.PublicFile}, "gcpkms": {kmsRecipient}, "vault": {vaultRecipient},
				"awskms": {awsRecipient}, "azurekv": {cloud.azureRecipient()},
				// The first recipient whose key the webhook holds opens it.
				"either": {awsRecipient, cloud.azureRecipient()},
			},
			wantAWS: 2, wantAzure: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, want := cloudSecret(t, ns, tt.name, tt.recipients)
			applyCounting(t, s, want, tt.wantAWS, tt.wantAzure)
		})
	}
}

// TestCloudEitherKey applies a value encrypted to both clouds to a webhook
// that holds only the AWS KMS key, then only the Key Vault key: each opens
// it, as two clusters sharing one manifest would.
func TestCloudEitherKey(t *testing.T) {
	restartWebhookOnFailure(t)
	t.Cleanup(func() {
		cluster.StopWebhook()
		if err := cluster.StartWebhook(context.Background()); err != nil {
			t.Errorf("restart the webhook with its own keys: %v", err)
		}
	})
	ns := newNamespace(t)
	entries := cloud.KeyConfig() // [awskms, azurekv]
	for i, tt := range []struct {
		name               string
		wantAWS, wantAzure int
	}{{"aws-only", 1, 0}, {"azure-only", 0, 1}} {
		t.Run(tt.name, func(t *testing.T) {
			config := filepath.Join(t.TempDir(), "keys.yaml")
			b, err := yaml.Marshal(map[string]any{"keys": []any{entries[i]}})
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(config, b, 0o600); err != nil {
				t.Fatal(err)
			}
			cluster.StopWebhook()
			if err := cluster.StartWebhook(t.Context(), "--key-config", config); err != nil {
				t.Fatal(err)
			}
			s, want := cloudSecret(t, ns, tt.name, map[string][]string{"password": {awsRecipient, cloud.azureRecipient()}})
			applyCounting(t, s, want, tt.wantAWS, tt.wantAzure)
		})
	}
}

// cloudSecret returns Secret ns/name whose data keys hold fresh plaintexts
// encrypted to their recipients, and the plaintexts.
func cloudSecret(t *testing.T, ns, name string, recipients map[string][]string) (*Secret, map[string]string) {
	t.Helper()
	s := newSecret(ns, name)
	s.StringData = map[string]string{}
	want := map[string]string{}
	for key, rs := range recipients {
		want[key] = plaintext(t, key)
		jwe, err := cluster.EncryptToAll(t.Context(), rs, []byte(want[key]), harness.Scope{Namespace: ns, Name: name})
		if err != nil {
			t.Fatal(err)
		}
		s.StringData[key] = jwe
	}
	return s, want
}

// faultCase is a case of TestKeyServiceFaults.
type faultCase = struct {
	name      string
	provider  string // as the webhook names the key service
	recipient string
	// fault breaks the key service and returns what heals it.
	fault func() (heal func() error)
	slow  bool
}

// cloudFaults are TestKeyServiceFaults' cases for AWS KMS and Key Vault.
func cloudFaults() []faultCase {
	aws := func(f awskmstest.Faults) func() func() error {
		return func() func() error {
			cloud.aws.SetFaults(f)
			return func() error { cloud.aws.SetFaults(awskmstest.Faults{}); return nil }
		}
	}
	azure := func(f azkvtest.Faults) func() func() error {
		return func() func() error {
			cloud.azure.SetFaults(f)
			return func() error { cloud.azure.SetFaults(azkvtest.Faults{}); return nil }
		}
	}
	return []faultCase{
		{name: "awskms-unavailable", provider: "awskms", recipient: awsRecipient, fault: aws(awskmstest.Faults{Error: "ServiceUnavailableException"})},
		{name: "awskms-stopped", provider: "awskms", recipient: awsRecipient, fault: func() func() error { cloud.aws.Close(); return cloud.aws.Restart }},
		{name: "awskms-slow", provider: "awskms", recipient: awsRecipient, slow: true, fault: aws(awskmstest.Faults{Delay: fakeDelay})},
		{name: "awskms-permission-denied", provider: "awskms", recipient: awsRecipient, fault: aws(awskmstest.Faults{Error: "AccessDeniedException"})},
		{name: "azurekv-unavailable", provider: "azurekv", recipient: cloud.azureRecipient(), fault: azure(azkvtest.Faults{Status: http.StatusServiceUnavailable})},
		{name: "azurekv-stopped", provider: "azurekv", recipient: cloud.azureRecipient(), fault: func() func() error { cloud.azure.Close(); return cloud.azure.Restart }},
		{name: "azurekv-slow", provider: "azurekv", recipient: cloud.azureRecipient(), slow: true, fault: azure(azkvtest.Faults{Delay: fakeDelay})},
		{name: "azurekv-permission-denied", provider: "azurekv", recipient: cloud.azureRecipient(), fault: azure(azkvtest.Faults{Status: http.StatusForbidden})},
	}
}

// applyCounting applies s, checks that want is stored, and that each cloud
// fake received as many unwrap calls as given.
func applyCounting(t *testing.T, s *Secret, want map[string]string, wantAWS, wantAzure int) {
	t.Helper()
	aws, azure := cloud.decryptCalls()
	mustApply(t, s)
	assertStored(t, s.Metadata.Namespace, s.Metadata.Name, want)
	aws2, azure2 := cloud.decryptCalls()
	if aws2-aws != wantAWS || azure2-azure != wantAzure {
		t.Errorf("unwrap calls: AWS KMS %d, Key Vault %d; want %d and %d", aws2-aws, azure2-azure, wantAWS, wantAzure)
	}
}
