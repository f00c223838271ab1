// Package azkv is the key service for an Azure Key Vault (or Managed HSM) RSA
// key, software or HSM-backed. The private key stays in the vault: Unwrap
// sends a JWE's encrypted key to the unwrapKey operation with RSA-OAEP-256 or
// RSA-OAEP.
//
// A key is named by its URL, https://VAULT.vault.azure.net/keys/NAME (every
// version of it) or …/keys/NAME/VERSION (one version). The kid values carry is
// a key version's URL; a kid naming another vault or key is a mismatch and is
// never sent anywhere.
//
// The webhook's identity needs the keys/unwrap/action and keys/read data
// actions (a custom role, the broader "Key Vault Crypto User", or an access
// policy with unwrapKey and get): Unwrap reads each version's key type and permitted operations once
// with getKey. Credentials come from Microsoft Entra workload identity in a
// cluster, and from azidentity's default chain elsewhere. Requests carry a
// bearer token obtained through the vault's authentication challenge, over
// TLS only.
package azkv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/jwe-webhook/jwe-webhook/internal/kms"
)

// ErrPermissionDenied means Key Vault or Microsoft Entra ID refused the
// webhook's identity: it lacks unwrapKey or get on the key, or its token
// could not be had.
var ErrPermissionDenied = errors.New("azure key vault: permission denied")

// ErrUnavailable means the vault or the token endpoint could not be reached
// or failed on its side (after the client's retries).
var ErrUnavailable = errors.New("azure key vault: unavailable")

// Client holds the credential and the connections to the vaults of its Keys.
// It is safe for concurrent use.
type Client struct {
	cred  azcore.TokenCredential
	opts  azcore.ClientOptions
	vault map[string]*azkeys.Client // by vault URL
	mu    sync.Mutex
}

// Option configures NewClient.
type Option func(*settings)

type settings struct {
	caFile                        string
	authorityHost                 string
	clientID, tenantID, tokenFile string
}

// WithCAFile trusts the PEM certificates in file (as well as the system's)
// for the vault's and the token endpoint's TLS certificates.
func WithCAFile(file string) Option { return func(s *settings) { s.caFile = file } }

// WithAuthorityHost sets the Microsoft Entra authority, e.g.
// https://login.microsoftonline.us/ for Azure Government or a local stand-in,
// instead of AZURE_AUTHORITY_HOST or the public cloud's. Instance discovery,
// which only the public authorities answer, is then off.
func WithAuthorityHost(url string) Option { return func(s *settings) { s.authorityHost = url } }

// WithWorkloadIdentity logs in with Microsoft Entra workload identity: the
// service-account token in tokenFile is exchanged for an access token of
// the application clientID in tenantID. Empty arguments fall back to
// AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE, which the
// workload identity webhook sets. Without this option the default chain
// (environment, workload identity, managed identity, Azure CLI) is used.
func WithWorkloadIdentity(clientID, tenantID, tokenFile string) Option {
	return func(s *settings) {
		s.clientID, s.tenantID, s.tokenFile = clientID, tenantID, tokenFile
		if s.tokenFile == "" {
			s.tokenFile = os.Getenv("AZURE_FEDERATED_TOKEN_FILE")
		}
	}
}

// retries is how many times a failed call is retried (throttled, 5xx,
// connection errors), after at most maxRetryDelay.
const (
	retries       = 2
	maxRetryDelay = 200 * time.Millisecond
)

// NewClient sets up the credential and returns a client. It makes no call: a
// credential that does not work shows on the first call.
func NewClient(ctx context.Context, opts ...Option) (*Client, error) {
	var s settings
	for _, o := range opts {
		o(&s)
	}
	transport, err := newTransport(s.caFile)
	if err != nil {
		return nil, err
	}
	co := azcore.ClientOptions{
		Transport: transport,
		// The SDK's default retries for over a minute, longer than an
		// admission request lives.
		Retry: policy.RetryOptions{MaxRetries: retries, RetryDelay: 50 * time.Millisecond, MaxRetryDelay: maxRetryDelay},
	}
	disableDiscovery := false
	if s.authorityHost != "" {
		co.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: s.authorityHost, Services: map[cloud.ServiceName]cloud.ServiceConfiguration{}}
		disableDiscovery = true
	}
	var cred azcore.TokenCredential
	if s.tokenFile != "" || s.clientID != "" || s.tenantID != "" {
		cred, err = azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions:            co,
			ClientID:                 s.clientID,
			TenantID:                 s.tenantID,
			TokenFilePath:            s.tokenFile,
			DisableInstanceDiscovery: disableDiscovery,
		})
	} else {
		cred, err = azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{
			ClientOptions:            co,
			DisableInstanceDiscovery: disableDiscovery,
		})
	}
	if err != nil {
		return nil, fmt.Errorf("azure key vault: credential: %w", err)
	}
	co.Cloud = cloud.Configuration{} // the vault's own URL says where it is
	return &Client{cred: cred, opts: co, vault: make(map[string]*azkeys.Client)}, nil
}

// newTransport returns the HTTP client for the vault and the token endpoint,
// trusting caFile's certificates besides the system's.
func newTransport(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("azure key vault: CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("azure key vault: CA file %q holds no PEM certificate", caFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: tr}, nil
}

// keys returns the client of the vault at vaultURL.
func (c *Client) keys(vaultURL string, loopback bool) (*azkeys.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if kc, ok := c.vault[vaultURL]; ok {
		return kc, nil
	}
	kc, err := azkeys.NewClient(vaultURL, c.cred, &azkeys.ClientOptions{
		ClientOptions: c.opts,
		// The SDK checks that the challenge's resource is the vault's
		// domain; a loopback address (a stand-in in tests) has none.
		DisableChallengeResourceVerification: loopback,
	})
	if err != nil {
		return nil, fmt.Errorf("azure key vault: client for %q: %w", vaultURL, err)
	}
	c.vault[vaultURL] = kc
	return kc, nil
}

// newCallError describes err, returned by the call op on key.
func newCallError(ctx context.Context, op, key string, err error) error {
	return kms.NewCallError(ctx, "azure key vault", op, key, err, ErrUnavailable, classify)
}

// classify says what an answer of Key Vault or Microsoft Entra ID means.
func classify(err error) (string, []error, bool) {
	var re *azcore.ResponseError
	var authErr *azidentity.AuthenticationFailedError
	switch {
	case errors.As(err, &re):
		what := fmt.Sprintf("HTTP %d %s: %s", re.StatusCode, re.ErrorCode, serviceMessage(re.RawResponse))
		switch {
		case re.StatusCode == http.StatusUnauthorized || re.StatusCode == http.StatusForbidden:
			return "permission denied (check the webhook's identity and its Key Vault role or access policy): " + what, []error{ErrPermissionDenied}, true
		case re.StatusCode == http.StatusNotFound:
			// The key or version does not exist; that will not change in
			// seconds.
			return what, []error{kms.ErrKeyNotFound}, true
		case re.StatusCode == http.StatusTooManyRequests || re.StatusCode >= 500:
			return what, []error{ErrUnavailable}, true
		}
		return what, nil, true
	case errors.As(err, &authErr):
		if authErr.RawResponse != nil && authErr.RawResponse.StatusCode < 500 {
			return "permission denied: Microsoft Entra ID refused a token: " + kms.ServiceMessage(authErr.Error()), []error{ErrPermissionDenied}, true
		}
		return "unavailable: getting a token: " + kms.ServiceMessage(authErr.Error()), []error{ErrUnavailable}, true
	}
	return "", nil, false
}

// serviceMessage reads error.message from a Key Vault error body.
func serviceMessage(resp *http.Response) string {
	if resp == nil || resp.Body == nil {
		return "no message"
	}
	var body struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = json.Unmarshal(b, &body)
	return kms.ServiceMessage(body.Error.Message)
}

// isStatus reports whether err came with an HTTP response of status.
func isStatus(err error, status int) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == status
}
