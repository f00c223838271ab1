// Package vault is the key service for an RSA key in HashiCorp Vault's transit
// secrets engine. The private key stays in Vault: the webhook sends each JWE's
// encrypted content key to /v1/<mount>/decrypt/<key> and gets the content key
// back, and the custodian CLI reads the public key from /v1/<mount>/keys/<key>.
//
// Key IDs name a version of a transit key, "vault://<mount>/<key>?version=N"
// (see ParseKeyID); one Key answers to every version of its transit key.
//
// Vault transit decrypts RSA with OAEP, SHA-256 for both the digest and MGF1 and
// an empty label: that is JWE "RSA-OAEP-256", the only algorithm a Key
// unwraps. Vault offers no other OAEP hash, so "RSA-OAEP" (SHA-1) values are
// refused.
package vault

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/vault/api"
	"go.uber.org/zap"

	"github.com/jwe-webhook/jwe-webhook/internal/files"
	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms"
)

// Algorithm is the JWE key management algorithm of Vault transit RSA keys.
const Algorithm = "RSA-OAEP-256"

// The authentication methods of AuthConfig.Method.
const (
	AuthToken      = "token"
	AuthKubernetes = "kubernetes"
)

// Defaults for the zero values of Config.
const (
	DefaultTimeout                 = 10 * time.Second
	DefaultKubernetesMount         = "kubernetes"
	DefaultServiceAccountTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"
)

// maxFileSize caps how much of a token, service-account JWT or CA file is read.
const maxFileSize = 1 << 20

var (
	// ErrPermissionDenied means Vault refused the token: it is unknown,
	// expired or revoked, or its policies do not allow the call.
	ErrPermissionDenied = errors.New("vault: permission denied")
	// ErrVersionTooOld means the value was encrypted to a key version below
	// the transit key's min_decryption_version, so Vault will not decrypt it.
	// Re-encrypt the value to the latest version.
	ErrVersionTooOld = errors.New("key version is below the transit key's min_decryption_version")
)

// Config says which transit key to use and how to reach and log in to Vault.
// Every setting is here: VAULT_ADDR, VAULT_TOKEN, VAULT_SKIP_VERIFY and the
// other VAULT_* variables are ignored (though a malformed one still makes the
// Vault client library fail).
type Config struct {
	// Address is Vault's URL, e.g. "https://vault.example.com:8200"; plain
	// http only to a loopback address.
	Address string
	// Namespace is the Vault Enterprise namespace; empty for none.
	Namespace string
	// Mount is the path the transit engine is mounted at, e.g. "transit" or
	// "kms/transit".
	Mount string
	// Key is the name of the transit key, of type rsa-2048, rsa-3072 or
	// rsa-4096.
	Key  string
	TLS  TLSConfig
	Auth AuthConfig
	// Timeout bounds each request to Vault; zero means DefaultTimeout. The
	// caller's context deadline applies as well.
	Timeout time.Duration
}

// TLSConfig says how to check Vault's serving certificate.
type TLSConfig struct {
	// CACert is a PEM file of the CA certificates to trust; empty means the
	// system's roots.
	CACert string
	// ServerName overrides the name checked in the certificate.
	ServerName string
	// InsecureSkipVerify turns certificate checks off. Only this field does
	// so (VAULT_SKIP_VERIFY is ignored), and it may not be combined with
	// CACert.
	InsecureSkipVerify bool
}

// AuthConfig says how the webhook logs in to Vault.
type AuthConfig struct {
	// Method is AuthToken or AuthKubernetes.
	Method string

	// Token is the Vault token for AuthToken; TokenFile names a file holding
	// it instead (re-read once when Vault answers "permission denied", so a
	// sidecar may rotate it). Set exactly one.
	Token     string
	TokenFile string

	// Role is the Kubernetes auth role for AuthKubernetes.
	Role string
	// KubernetesMount is the path of the Kubernetes auth method under auth/;
	// empty means DefaultKubernetesMount.
	KubernetesMount string
	// ServiceAccountTokenFile holds the service-account JWT to log in with;
	// empty means DefaultServiceAccountTokenFile. It is read at every login.
	ServiceAccountTokenFile string
}

// Key is one transit key in Vault, all its versions. Build it with New and
// release it with Close. It is safe for concurrent use.
type Key struct {
	client *api.Client
	mount  string
	key    string
	family string // KeyIDFor(mount, key, 0)
	auth   AuthConfig
	log    *zap.Logger

	// loginClient logs in to the Kubernetes auth method; it never holds a
	// token.
	loginClient *api.Client
	// refreshMu serialises refreshing the token after a "permission denied".
	refreshMu sync.Mutex

	ctx       context.Context // cancelled by Close
	cancel    context.CancelFunc
	done      chan struct{} // closed when background renewal has stopped
	closeOnce sync.Once
}

var (
	_ kms.Decrypter = (*Key)(nil)
)

// New checks cfg, builds a Vault client and logs in: with AuthToken it looks
// the token up (lookup-self) so that a wrong token fails here; with
// AuthKubernetes it logs in with the role and service-account JWT and keeps
// the token alive in the background, renewing it while Vault allows and
// logging in again when it does not, until Close. log may be nil; tokens are
// never logged.
func New(ctx context.Context, cfg Config, log *zap.Logger) (*Key, error) {
	if log == nil {
		log = zap.NewNop()
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("vault config: %w", err)
	}
	httpClient, err := newHTTPClient(cfg.TLS)
	if err != nil {
		return nil, fmt.Errorf("vault config: %w", err)
	}
	client, err := newAPIClient(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	k := &Key{
		client: client,
		mount:  cfg.Mount,
		key:    cfg.Key,
		family: KeyIDFor(cfg.Mount, cfg.Key, 0),
		auth:   cfg.Auth,
		done:   make(chan struct{}),
	}
	k.log = log.With(zap.String("key", k.family))
	k.ctx, k.cancel = context.WithCancel(context.Background())
	if cfg.TLS.InsecureSkipVerify {
		k.log.Warn("vault: TLS certificate verification is off (TLS.InsecureSkipVerify)")
	}
	switch cfg.Auth.Method {
	case AuthToken:
		close(k.done)
		err = k.startToken(ctx)
	case AuthKubernetes:
		if k.loginClient, err = newAPIClient(cfg, httpClient); err != nil {
			return nil, err
		}
		err = k.startKubernetes(ctx)
	}
	if err != nil {
		k.cancel()
		return nil, err
	}
	return k, nil
}

// Check returns the error New would return for a configuration that can
// never work, without contacting Vault: New may still fail later for a
// reason of Vault's (unreachable, token refused).
func (c Config) Check() error {
	c, err := c.withDefaults()
	if err == nil {
		_, err = newHTTPClient(c.TLS)
	}
	if err != nil {
		return fmt.Errorf("vault config: %w", err)
	}
	return nil
}

// KeyID is the ID of the key family c names, as a Key built from c answers
// to (see Key.KeyID), without contacting Vault.
func (c Config) KeyID() string { return KeyIDFor(strings.Trim(c.Mount, "/"), c.Key, 0) }

// MatchKeyID reports whether kid names a version of the transit key c names,
// as Key.MatchKeyID, without contacting Vault.
func (c Config) MatchKeyID(kid string) bool {
	mount, key, version, err := ParseKeyID(kid)
	return err == nil && version > 0 && mount == strings.Trim(c.Mount, "/") && key == c.Key
}

// withDefaults checks c and fills in its defaults.
func (c Config) withDefaults() (Config, error) {
	u, err := url.Parse(c.Address)
	switch {
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return c, fmt.Errorf("address %q is not an http(s) URL", c.Address)
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		// The token would cross the network in the clear.
		return c, fmt.Errorf("address %q: plain http is allowed to loopback only", c.Address)
	}
	c.Mount = strings.Trim(c.Mount, "/")
	if err := checkMount(c.Mount); err != nil {
		return c, err
	}
	if err := checkKeyName(c.Key); err != nil {
		return c, err
	}
	if c.TLS.InsecureSkipVerify && c.TLS.CACert != "" {
		return c, errors.New("TLS.InsecureSkipVerify and TLS.CACert are both set: choose one")
	}
	switch {
	case c.Timeout == 0:
		c.Timeout = DefaultTimeout
	case c.Timeout < 0:
		return c, fmt.Errorf("negative timeout %s", c.Timeout)
	}
	a := &c.Auth
	switch a.Method {
	case AuthToken:
		if (a.Token == "") == (a.TokenFile == "") {
			return c, errors.New("token auth needs exactly one of Token and TokenFile")
		}
	case AuthKubernetes:
		if a.Token != "" || a.TokenFile != "" {
			return c, errors.New("kubernetes auth takes no Token or TokenFile")
		}
		if a.Role == "" {
			return c, errors.New("kubernetes auth needs a Role")
		}
		if a.KubernetesMount = strings.Trim(a.KubernetesMount, "/"); a.KubernetesMount == "" {
			a.KubernetesMount = DefaultKubernetesMount
		}
		if err := checkMount(a.KubernetesMount); err != nil {
			return c, fmt.Errorf("kubernetes auth: %w", err)
		}
		if a.ServiceAccountTokenFile == "" {
			a.ServiceAccountTokenFile = DefaultServiceAccountTokenFile
		}
	default:
		return c, fmt.Errorf("auth method %q is not %q or %q", a.Method, AuthToken, AuthKubernetes)
	}
	return c, nil
}

// newHTTPClient returns the HTTP client both Vault clients share, with TLS
// set from t alone.
func newHTTPClient(t TLSConfig) (*http.Client, error) {
	tlsConfig := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify,
	}
	if t.CACert != "" {
		pemCerts, err := files.Read(t.CACert, maxFileSize)
		if err != nil {
			return nil, fmt.Errorf("CA file %q: %w", t.CACert, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemCerts) {
			return nil, fmt.Errorf("CA file %q holds no PEM certificate", t.CACert)
		}
		tlsConfig.RootCAs = pool
	}
	transport := cleanhttp.DefaultPooledTransport()
	transport.TLSClientConfig = tlsConfig
	return &http.Client{
		Transport: transport,
		// The Vault client follows redirects itself, refusing downgrades.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}

// newAPIClient returns a Vault client for cfg without a token. Requests are
// not retried: the admission deadline is short, and the API server retries
// the whole request.
func newAPIClient(cfg Config, httpClient *http.Client) (*api.Client, error) {
	client, err := api.NewClient(&api.Config{
		Address:      cfg.Address,
		HttpClient:   httpClient,
		Timeout:      cfg.Timeout,
		MaxRetries:   0,
		MinRetryWait: 100 * time.Millisecond,
		MaxRetryWait: 500 * time.Millisecond,
	})
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	// NewClient takes the token, namespace and extra headers from VAULT_*
	// variables; Config is the only source of settings.
	client.ClearToken()
	client.SetHeaders(http.Header{api.RequestHeaderName: {"true"}})
	if cfg.Namespace != "" {
		client.SetNamespace(cfg.Namespace)
	}
	return client, nil
}

// KeyID returns the ID of the key family, "vault://<mount>/<key>". Values
// name a version of it; see MatchKeyID.
func (k *Key) KeyID() string { return k.family }

// MatchKeyID reports whether kid names a version of this transit key,
// "vault://<mount>/<key>?version=N" with N ≥ 1.
func (k *Key) MatchKeyID(kid string) bool {
	_, err := k.version(kid)
	return err == nil
}

// version returns the key version kid names. The error wraps
// jwe.ErrKeyMismatch when kid is not a version of this key.
func (k *Key) version(kid string) (int, error) {
	mount, key, version, err := ParseKeyID(kid)
	switch {
	case err != nil:
		return 0, fmt.Errorf("%w: %w", err, jwe.ErrKeyMismatch)
	case mount != k.mount || key != k.key:
		return 0, fmt.Errorf("key ID %q is not a version of %s: %w", kid, k.family, jwe.ErrKeyMismatch)
	case version == 0:
		return 0, fmt.Errorf("key ID %q names no version (want %s?version=N): %w", kid, k.family, jwe.ErrKeyMismatch)
	}
	return version, nil
}

// Close stops renewing the token and waits for the renewal to end. The Key
// must not be used afterwards.
func (k *Key) Close() error {
	k.closeOnce.Do(func() {
		k.cancel()
		<-k.done
		k.log.Info("vault: closed")
	})
	return nil
}

// isLoopback reports whether host is "localhost" or a loopback IP.
func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// readSecretFile reads a token or JWT from path. Errors never hold the file's
// content.
func readSecretFile(path string) (string, error) {
	data, err := files.Read(path, maxFileSize)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", fmt.Errorf("read %q: %w", path, err)
	}
	s := strings.TrimSpace(string(data))
	if s == "" {
		return "", fmt.Errorf("read %q: file is empty", path)
	}
	return s, nil
}
