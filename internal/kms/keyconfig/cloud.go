package keyconfig

import (
	"context"
	"net/url"

	"github.com/jwe-webhook/jwe-webhook/internal/kms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/awskms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/azkv"
)

// AWSKMS is an AWS KMS asymmetric RSA key (key usage ENCRYPT_DECRYPT).
// Credentials come from the SDK's default chain (IRSA or EKS Pod Identity
// in a cluster); the region from the ARN.
type AWSKMS struct {
	// ARN is the key ARN; an alias is refused, because it can move.
	ARN string `yaml:"arn"`
	// Endpoint overrides the service endpoint (an https URL, e.g. a VPC
	// endpoint; plain http only to loopback, for tests).
	Endpoint string `yaml:"endpoint"`
	// CAFile is a PEM bundle to trust for the endpoint's certificate.
	CAFile string `yaml:"caFile"`
}

// AzureKV is an Azure Key Vault or Managed HSM RSA key.
type AzureKV struct {
	// Key is the key's URL, https://VAULT.vault.azure.net/keys/NAME (every
	// version) or …/keys/NAME/VERSION (one version).
	Key string `yaml:"key"`
	// CAFile is a PEM bundle to trust for the vault's and the token
	// endpoint's certificates.
	CAFile string `yaml:"caFile"`
	// AuthorityHost is the Microsoft Entra authority, for a sovereign
	// cloud; default AZURE_AUTHORITY_HOST or the public cloud's.
	AuthorityHost string `yaml:"authorityHost"`
	// WorkloadIdentity sets what the workload identity webhook otherwise
	// puts in AZURE_CLIENT_ID, AZURE_TENANT_ID and
	// AZURE_FEDERATED_TOKEN_FILE. Without it the default credential chain
	// is used.
	WorkloadIdentity *AzureWorkloadIdentity `yaml:"workloadIdentity"`
}

// AzureWorkloadIdentity is the application the webhook logs in as, and the
// service-account token it presents.
type AzureWorkloadIdentity struct {
	ClientID  string `yaml:"clientID"`
	TenantID  string `yaml:"tenantID"`
	TokenFile string `yaml:"tokenFile"`
}

func (a *AWSKMS) validate() error {
	if a.ARN == "" {
		return fieldErr("awskms.arn", "missing; the key ARN, arn:aws:kms:REGION:ACCOUNT:key/KEY-ID")
	}
	if _, err := awskms.ParseKeyARN(a.ARN); err != nil {
		return fieldErr("awskms.arn", "%v", err)
	}
	if a.Endpoint != "" && !validEndpointURL(a.Endpoint) {
		return fieldErr("awskms.endpoint", "%q must be an https:// URL (plain http only to loopback)", a.Endpoint)
	}
	return nil
}

func (a *AzureKV) validate() error {
	if a.Key == "" {
		return fieldErr("azurekv.key", "missing; the key's URL, https://VAULT.vault.azure.net/keys/NAME[/VERSION]")
	}
	if _, err := azkv.ParseKeyURL(a.Key); err != nil {
		return fieldErr("azurekv.key", "%v", err)
	}
	if a.AuthorityHost != "" {
		if u, err := url.Parse(a.AuthorityHost); err != nil || u.Scheme != "https" || u.Host == "" {
			return fieldErr("azurekv.authorityHost", "%q is not an https:// URL", a.AuthorityHost)
		}
	}
	return nil
}

// validEndpointURL accepts an https URL, or an http one to loopback.
func validEndpointURL(addr string) bool {
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		return false
	}
	return u.Scheme == "https" || u.Scheme == "http" && isLoopback(u.Host)
}

// clients holds one client per way of reaching a cloud key service, shared
// by the entries of one Build.
type clients struct {
	aws   map[AWSKMS]*awskms.Client  // by endpoint and CA, ARN empty
	azure map[azureConn]*azkv.Client // by credential and CA
}

type azureConn struct {
	caFile, authorityHost string
	identity              AzureWorkloadIdentity
	defaultChain          bool
}

func (c *clients) awsKey(ctx context.Context, a *AWSKMS) ([]kms.Decrypter, error) {
	client, err := cached(c.aws, AWSKMS{Endpoint: a.Endpoint, CAFile: a.CAFile}, func() (*awskms.Client, error) {
		var opts []awskms.Option
		if a.Endpoint != "" {
			opts = append(opts, awskms.WithEndpoint(a.Endpoint))
		}
		if a.CAFile != "" {
			opts = append(opts, awskms.WithCAFile(a.CAFile))
		}
		return awskms.NewClient(ctx, opts...)
	})
	if err != nil {
		return nil, err
	}
	return single(client.Key(a.ARN))
}

func (c *clients) azureKey(ctx context.Context, a *AzureKV) ([]kms.Decrypter, error) {
	conn := azureConn{caFile: a.CAFile, authorityHost: a.AuthorityHost, defaultChain: a.WorkloadIdentity == nil}
	if a.WorkloadIdentity != nil {
		conn.identity = *a.WorkloadIdentity
	}
	client, err := cached(c.azure, conn, func() (*azkv.Client, error) {
		var opts []azkv.Option
		if a.CAFile != "" {
			opts = append(opts, azkv.WithCAFile(a.CAFile))
		}
		if a.AuthorityHost != "" {
			opts = append(opts, azkv.WithAuthorityHost(a.AuthorityHost))
		}
		if id := a.WorkloadIdentity; id != nil {
			opts = append(opts, azkv.WithWorkloadIdentity(id.ClientID, id.TenantID, id.TokenFile))
		}
		return azkv.NewClient(ctx, opts...)
	})
	if err != nil {
		return nil, err
	}
	return single(client.Key(a.Key))
}

// cached returns the client clients holds for conn, made by dial and kept
// there on first use: one client per way of reaching a key service.
func cached[C comparable, T any](clients map[C]T, conn C, dial func() (T, error)) (T, error) {
	if client, ok := clients[conn]; ok {
		return client, nil
	}
	client, err := dial()
	if err != nil {
		return client, err
	}
	clients[conn] = client
	return client, nil
}

// single is the answer for an entry of one key.
func single[K kms.Decrypter](key K, err error) ([]kms.Decrypter, error) {
	if err != nil {
		return nil, err
	}
	return []kms.Decrypter{key}, nil
}
