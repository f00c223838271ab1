package main

import (
	"strings"
	"testing"

	"github.com/jwe-webhook/jwe-webhook/internal/kms/awskms/awskmstest"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/azkv/azkvtest"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/kmstest"
)

// The AWS KMS keys the scripts use: the alias alias/k8s-secrets names the
// first.
const (
	awsKey      = "arn:aws:kms:eu-west-1:111122223333:key/11111111-2222-3333-4444-555555555555"
	awsOtherKey = "arn:aws:kms:eu-west-1:111122223333:key/66666666-7777-8888-9999-000000000000"
)

// cloudEnv starts a fake AWS KMS holding awsKey and awsOtherKey, and a fake
// Key Vault holding the key k8s-secrets with two versions, and returns the
// environment that points the AWS SDK (credentials, region, endpoint) and
// the Azure SDK (workload identity, authority, CA) at them. AWSKMS_KEY is
// awsKey; AZUREKV_KEY the Key Vault key as azurekv:// takes it (VAULT/keys/
// NAME), AZUREKV_V1 and AZUREKV_V2 its versions' URLs, AZUREKV_V1_REF the first as
// azurekv:// takes it.
func cloudEnv(t *testing.T) map[string]string {
	t.Helper()
	aws := awskmstest.Start(t)
	for i, arn := range []string{awsKey, awsOtherKey} {
		if err := aws.AddKey(arn, kmstest.RSAKey(t, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := aws.SetAlias("alias/k8s-secrets", awsKey); err != nil {
		t.Fatal(err)
	}
	az := azkvtest.Start(t)
	v1 := az.AddVersion("k8s-secrets", kmstest.RSAKey(t, 1))
	v2 := az.AddVersion("k8s-secrets", kmstest.RSAKey(t, 2))
	dir := t.TempDir()
	caFile, tokenFile, err := az.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"AWSKMS_KEY":                  awsKey,
		"AWSKMS_OTHER_KEY":            awsOtherKey,
		envAWSKMSEndpoint:             aws.URL,
		"AWS_ACCESS_KEY_ID":           aws.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":       aws.SecretAccessKey,
		"AWS_REGION":                  "eu-west-1",
		"AWS_CONFIG_FILE":             dir + "/no-aws-config",
		"AWS_SHARED_CREDENTIALS_FILE": dir + "/no-aws-credentials",
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AZUREKV_KEY":                 strings.TrimPrefix(az.URL, "https://") + "/keys/k8s-secrets",
		"AZUREKV_V1":                  v1,
		"AZUREKV_V2":                  v2,
		"AZUREKV_V1_REF":              strings.TrimPrefix(v1, "https://"),
		"AZURE_CLIENT_ID":             az.ClientID,
		"AZURE_TENANT_ID":             az.TenantID,
		"AZURE_FEDERATED_TOKEN_FILE":  tokenFile,
		"AZURE_AUTHORITY_HOST":        az.URL,
		"SSL_CERT_FILE":               caFile,
	}
}
