package main

import (
	"context"
	"errors"
	"strings"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/awskms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/azkv"
)

// The schemes of -r arguments that name an AWS KMS key or an Azure Key Vault
// key.
const (
	awskmsScheme  = "awskms://"
	azurekvScheme = "azurekv://"
)

// envAWSKMSEndpoint points AWS KMS calls at another endpoint (a VPC endpoint,
// a test server).
const envAWSKMSEndpoint = "JWE_ENCRYPT_AWSKMS_ENDPOINT"

// awsHint says how to name an AWS KMS key.
const awsHint = "write awskms://arn:aws:kms:REGION:ACCOUNT:key/KEY-ID, or awskms://alias/NAME with AWS_REGION set"

// azureHint says how to name an Azure Key Vault key.
const azureHint = "write azurekv://VAULT.vault.azure.net/keys/NAME, with /VERSION for one version"

// awsClient makes the AWS KMS client on first use: credentials and the
// region of names that are not ARNs come from the SDK's default chain.
func (s *keyServices) awsClient(ctx context.Context) error {
	return connect(&s.aws, func() (*awskms.Client, error) {
		var opts []awskms.Option
		if ep := s.getenv(envAWSKMSEndpoint); ep != "" {
			opts = append(opts, awskms.WithEndpoint(ep))
		}
		return awskms.NewClient(ctx, opts...)
	}, "AWS KMS is reached with the AWS SDK's credentials: run 'aws configure' or 'aws sso login'")
}

// awsKMS returns the public key of the key ref names (key ARN, alias ARN,
// alias/NAME or key ID), with the key ARN as kid: an alias is resolved here,
// because the webhook never takes an alias for a kid.
func (s *keyServices) awsKMS(ctx context.Context, ref string) ([]jwe.PublicKey, error) {
	if err := s.awsClient(ctx); err != nil {
		return nil, err
	}
	pk, err := s.aws.PublicKey(ctx, ref)
	switch {
	case errors.Is(err, awskms.ErrPermissionDenied):
		return nil, withHint(err, "you need kms:GetPublicKey on the key, and AWS credentials that are valid ('aws sts get-caller-identity')")
	case errors.Is(err, kms.ErrKeyNotFound):
		return nil, withHint(err, "%s", awsHint)
	case err != nil:
		return nil, err
	}
	if ref != pk.KeyID {
		s.warnf("%s%s is key %s: values name the key ARN", awskmsScheme, ref, pk.KeyID)
	}
	return []jwe.PublicKey{pk}, nil
}

// azureClient makes the Key Vault client on first use, with the default
// credential chain (environment, workload identity, managed identity, Azure
// CLI). With AZURE_AUTHORITY_HOST set, that authority is used without
// instance discovery.
func (s *keyServices) azureClient(ctx context.Context) error {
	return connect(&s.azure, func() (*azkv.Client, error) {
		var opts []azkv.Option
		if host := s.getenv("AZURE_AUTHORITY_HOST"); host != "" {
			opts = append(opts, azkv.WithAuthorityHost(host))
		}
		return azkv.NewClient(ctx, opts...)
	}, "Key Vault is reached with Azure credentials: run 'az login'")
}

// azureURL turns VAULT/keys/NAME[/VERSION] into the key's URL; a VAULT
// without a dot or port is a vault in the public cloud.
func azureURL(spec string) string {
	host, path, _ := strings.Cut(strings.TrimPrefix(spec, azurekvScheme), "/")
	if !strings.ContainsAny(host, ".:") {
		host += ".vault.azure.net"
	}
	return "https://" + host + "/" + path
}

// azureKey returns the Key Vault key spec names.
func (s *keyServices) azureKey(ctx context.Context, spec string) (*azkv.Key, error) {
	if err := s.azureClient(ctx); err != nil {
		return nil, err
	}
	k, err := s.azure.Key(azureURL(spec))
	if err != nil {
		return nil, withHint(err, "%s", azureHint)
	}
	return k, nil
}

// azureKV returns the public key of the key spec names: its newest version
// unless it names one, with the version's URL as kid.
func (s *keyServices) azureKV(ctx context.Context, spec string) ([]jwe.PublicKey, error) {
	k, err := s.azureKey(ctx, spec)
	if err != nil {
		return nil, err
	}
	pk, err := k.PublicKey(ctx)
	switch {
	case errors.Is(err, azkv.ErrPermissionDenied):
		return nil, withHint(err, "you need the keys/read data action on the key (role \"Key Vault Crypto User\" or \"Key Vault Reader\")")
	case err != nil:
		return nil, err
	}
	return []jwe.PublicKey{pk}, nil
}

// cloudDecrypter returns the AWS KMS or Key Vault key spec names, to open
// values with; ok is false for another spec.
func (s *keyServices) cloudDecrypter(ctx context.Context, spec string) (d kms.Decrypter, ok bool, err error) {
	switch {
	case strings.HasPrefix(spec, awskmsScheme):
		pks, err := s.awsKMS(ctx, strings.TrimPrefix(spec, awskmsScheme))
		if err != nil {
			return nil, true, err
		}
		k, err := s.aws.Key(pks[0].KeyID)
		return k, true, err
	case strings.HasPrefix(spec, azurekvScheme):
		k, err := s.azureKey(ctx, spec)
		return k, true, err
	}
	return nil, false, nil
}

// cloudSpec returns the -r or -k argument for the AWS KMS or Key Vault key a
// kid names.
func cloudSpec(kid string) (string, bool) {
	switch {
	case strings.HasPrefix(kid, "arn:") && strings.Contains(kid, ":kms:"):
		return awskmsScheme + kid, true
	case strings.HasPrefix(kid, "https://") && strings.Contains(kid, "/keys/"):
		return azurekvScheme + strings.TrimPrefix(kid, "https://"), true
	}
	return "", false
}

// isCloudService reports whether spec names an AWS KMS or Key Vault key.
func isCloudService(spec string) bool {
	return strings.HasPrefix(spec, awskmsScheme) || strings.HasPrefix(spec, azurekvScheme)
}
