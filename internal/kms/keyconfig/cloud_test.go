package keyconfig

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/awskms/awskmstest"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/azkv/azkvtest"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/kmstest"
)

const awsARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

// TestBuildCloudProviders builds a keyring of an AWS KMS key and an Azure
// Key Vault key, each behind its fake, with credentials as a cluster gives
// them: AWS's from the environment, Azure's by workload identity.
func TestBuildCloudProviders(t *testing.T) {
	cfg, _, _, v1 := cloudServices(t)
	azureKey := strings.TrimSuffix(v1, v1[strings.LastIndexByte(v1, '/'):])
	keys, err := Build(t.Context(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	if got, want := fmt.Sprint(keys.KeyIDs()), fmt.Sprint(sorted([]string{awsARN, azureKey})); got != want {
		t.Fatalf("kids %s, want %s", got, want)
	}
	published, err := keys.PublicKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	byKid := map[string]jwe.PublicKey{}
	for _, pk := range published {
		byKid[pk.KeyID] = pk
	}
	for kid, ns := range map[string]string{awsARN: "payments", v1: "hr"} {
		pk, ok := byKid[kid]
		if !ok {
			t.Fatalf("no public key %q among %v", kid, published)
		}
		if err := roundTrip(t, pk, ns, keys.Unwrap); err != nil {
			t.Errorf("%s: %v", kid, err)
		}
	}
	if err := roundTrip(t, byKid[awsARN], "hr", keys.Unwrap); err == nil || !strings.Contains(err.Error(), "namespace") {
		t.Errorf("AWS key outside its namespaces: %v", err)
	}
	if p, _ := keys.Provider(awsARN); p != "awskms" {
		t.Errorf("provider of %q = %q", awsARN, p)
	}
}

func TestCloudConfigErrors(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"keys:\n  - provider: awskms\n    awskms: {}\n", "3: keys[0].awskms.arn: missing"},
		{"keys:\n  - provider: awskms\n    awskms:\n      arn: arn:aws:kms:eu-west-1:111122223333:alias/hr\n", "4: keys[0].awskms.arn: aws kms: \"arn:aws:kms:eu-west-1:111122223333:alias/hr\" is an alias ARN"},
		{"keys:\n  - provider: awskms\n    awskms: {arn: " + awsARN + ", endpoint: \"http://kms.internal\"}\n", "keys[0].awskms.endpoint: \"http://kms.internal\" must be an https:// URL"},
		{"keys:\n  - provider: azurekv\n    azurekv: {}\n", "keys[0].azurekv.key: missing"},
		{"keys:\n  - provider: azurekv\n    azurekv: {key: \"https://hr.vault.azure.net/secrets/x\"}\n", "keys[0].azurekv.key: azure key vault: \"https://hr.vault.azure.net/secrets/x\" is not a key URL"},
		{"keys:\n  - provider: azurekv\n    azurekv: {key: \"https://hr.vault.azure.net/keys/x\", authorityHost: \"login\"}\n", "keys[0].azurekv.authorityHost: \"login\" is not an https:// URL"},
		{"keys:\n  - provider: azurekv\n    awskms: {arn: " + awsARN + "}\n", "keys[0].azurekv: missing; provider \"azurekv\" needs"},
	} {
		_, err := Parse([]byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.yaml, err, c.want)
		}
	}
}

// cloudServices starts the AWS KMS and Key Vault fakes with a key each and
// returns a configuration of both keys and the Key Vault key's version ID.
func cloudServices(t *testing.T) (cfg *File, aws *awskmstest.Server, az *azkvtest.Server, v1 string) {
	t.Helper()
	aws = awskmstest.Start(t)
	if err := aws.AddKey(awsARN, kmstest.RSAKey(t, 0)); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", aws.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", aws.SecretAccessKey)
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	az = azkvtest.Start(t)
	v1 = az.AddVersion("hr", kmstest.RSAKey(t, 1))
	caFile, tokenFile, err := az.WriteFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	azureKey := strings.TrimSuffix(v1, v1[strings.LastIndexByte(v1, '/'):])
	cfg, err = Parse(fmt.Appendf(nil, `keys:
  - provider: awskms
    awskms: {arn: %s, endpoint: %s}
    namespaces: [payments]
  - provider: azurekv
    azurekv:
      key: %s
      caFile: %s
      authorityHost: %s
      workloadIdentity: {clientID: %s, tenantID: %s, tokenFile: %s}
`, awsARN, aws.URL, azureKey, caFile, az.URL, az.ClientID, az.TenantID, tokenFile))
	if err != nil {
		t.Fatal(err)
	}
	return cfg, aws, az, v1
}

// TestBuildCloudProvidersDown: AWS KMS and Key Vault refuse connections
// while the keyring is built. It builds; both keys refuse their values as
// not reached until their services are back.
func TestBuildCloudProvidersDown(t *testing.T) {
	cfg, aws, az, v1 := cloudServices(t)
	aws.Close()
	az.Close()
	keys, err := Build(t.Context(), cfg, Options{})
	if err != nil {
		t.Fatalf("key services down stopped the build: %v", err)
	}
	defer keys.Close()
	for _, s := range keys.KeyStates() {
		if s.Err == nil {
			t.Errorf("%s %s reported reached while down", s.Provider, s.KeyID)
		}
	}
	if _, err := keys.Unwrap(t.Context(), "payments", jwe.Recipient{KeyID: awsARN, Algorithm: "RSA-OAEP-256", EncryptedKey: []byte("x")}); !errors.Is(err, ErrNotConnected) {
		t.Errorf("AWS value while AWS KMS is down: %v, want ErrNotConnected", err)
	}
	if err := aws.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := az.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, provider := range []string{"awskms", "azurekv"} {
		for stateOf(keys.KeyStates(), provider).Err != nil {
			if time.Now().After(deadline) {
				t.Fatalf("%s back, still not reached: %v", provider, stateOf(keys.KeyStates(), provider).Err)
			}
			time.Sleep(20 * time.Millisecond) // polling the state, not waiting a fixed time
		}
	}
	published, err := keys.PublicKeys(t.Context())
	if err != nil || len(published) != 2 {
		t.Fatalf("public keys once reached: %v, %v", published, err)
	}
	for _, pk := range published {
		ns := map[string]string{awsARN: "payments", v1: "hr"}[pk.KeyID]
		if err := roundTrip(t, pk, ns, keys.Unwrap); err != nil {
			t.Errorf("%s once reached: %v", pk.KeyID, err)
		}
	}
}
