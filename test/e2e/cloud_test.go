package e2e_test

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/jwe-webhook/jwe-webhook/internal/kms/awskms/awskmstest"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/azkv/azkvtest"
)

// The AWS KMS key and the Key Vault key the cloud fakes hold, both in the
// webhook's key configuration for every namespace.
const (
	awsKey       = "arn:aws:kms:eu-west-1:111122223333:key/0e2e0e2e-1111-2222-3333-444444444444"
	awsRecipient = "awskms://" + awsKey
	azureKeyName = "secrets"
)

// cloudServices are a fake AWS KMS (AWS JSON 1.1 over HTTP, SigV4 checked)
// and a fake Key Vault with its Microsoft Entra token endpoint (HTTPS, bearer
// challenge, workload identity) in the test process on loopback ports. The
// webhook reaches them through the real SDKs: AWS credentials from the
// environment, Azure's by workload identity with the fake's federated token.
// Either can be stopped (connections refused) and restarted on its address.
type cloudServices struct {
	aws   *awskmstest.Server
	azure *azkvtest.Server
	// azureCA and azureToken are the fake Key Vault's CA certificate and the
	// federated service-account token, as files.
	azureCA, azureToken string
}

// cloud is shared by every test, like keys. Set once by TestMain.
var cloud *cloudServices

// startCloudServices starts both fakes with their keys; dir receives the
// Key Vault CA and token files. It sets the AWS SDK's environment for this
// process and the programs it starts (the webhook, jwe-encrypt).
func startCloudServices(dir string) (*cloudServices, error) {
	aws, err := awskmstest.NewServer("127.0.0.1:0", "AKIAE2EFAKEKEY000001", "e2e-secret-"+filepath.Base(dir))
	if err != nil {
		return nil, err
	}
	cs := &cloudServices{aws: aws}
	var rsaKeys [2]*rsa.PrivateKey
	for i := range rsaKeys {
		if rsaKeys[i], err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			cs.Close()
			return nil, err
		}
	}
	if err := aws.AddKey(awsKey, rsaKeys[0]); err != nil {
		cs.Close()
		return nil, err
	}
	if cs.azure, err = azkvtest.NewServer("127.0.0.1:0"); err != nil {
		cs.Close()
		return nil, err
	}
	cs.azure.AddVersion(azureKeyName, rsaKeys[1])
	if cs.azureCA, cs.azureToken, err = cs.azure.WriteFiles(dir); err != nil {
		cs.Close()
		return nil, err
	}
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           aws.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":       aws.SecretAccessKey,
		"AWS_CONFIG_FILE":             filepath.Join(dir, "no-aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "no-aws-credentials"),
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		if err := os.Setenv(k, v); err != nil {
			cs.Close()
			return nil, err
		}
	}
	return cs, nil
}

// azureKey is the Key Vault key's URL; azureRecipient the same for -r.
func (cs *cloudServices) azureKey() string { return cs.azure.URL + "/keys/" + azureKeyName }
func (cs *cloudServices) azureRecipient() string {
	return "azurekv://" + strings.TrimPrefix(cs.azureKey(), "https://")
}

// Close stops both fakes.
func (cs *cloudServices) Close() {
	if cs.aws != nil {
		cs.aws.Close()
	}
	if cs.azure != nil {
		cs.azure.Close()
	}
}

// KeyConfig returns the entries of the webhook's key configuration for the
// fakes' keys (see internal/kms/keyconfig).
func (cs *cloudServices) KeyConfig() []any {
	return []any{
		map[string]any{"provider": "awskms", "awskms": map[string]any{"arn": awsKey, "endpoint": cs.aws.URL}},
		map[string]any{"provider": "azurekv", "azurekv": map[string]any{
			"key": cs.azureKey(), "caFile": cs.azureCA, "authorityHost": cs.azure.URL,
			"workloadIdentity": map[string]any{"clientID": cs.azure.ClientID, "tenantID": cs.azure.TenantID, "tokenFile": cs.azureToken},
		}},
	}
}

// EncryptEnv points jwe-encrypt at the fakes: AWS's endpoint, and Azure's
// authority, workload identity and CA.
func (cs *cloudServices) EncryptEnv() []string {
	return []string{
		"JWE_ENCRYPT_AWSKMS_ENDPOINT=" + cs.aws.URL,
		"AZURE_AUTHORITY_HOST=" + cs.azure.URL,
		"AZURE_CLIENT_ID=" + cs.azure.ClientID,
		"AZURE_TENANT_ID=" + cs.azure.TenantID,
		"AZURE_FEDERATED_TOKEN_FILE=" + cs.azureToken,
		"SSL_CERT_FILE=" + cs.azureCA,
	}
}

// decryptCalls counts the unwrap calls both fakes received.
func (cs *cloudServices) decryptCalls() (aws, azure int) {
	return cs.aws.Calls().Decrypt, cs.azure.Calls().UnwrapKey
}

func (cs *cloudServices) String() string {
	return fmt.Sprintf("fake AWS KMS on %s, fake Key Vault on %s", cs.aws.URL, cs.azure.URL)
}
