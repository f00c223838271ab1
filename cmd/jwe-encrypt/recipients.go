package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/awskms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/azkv"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/gcpkms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/local"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/vault"
)

// The schemes of -r arguments that name a key in a key service.
const (
	gcpkmsScheme = "gcpkms://"
	vaultScheme  = "vault://"
)

// Environment variables that point Cloud KMS calls at a test server.
const (
	envGCPKMSEndpoint = "JWE_ENCRYPT_GCPKMS_ENDPOINT"
	envGCPKMSInsecure = "JWE_ENCRYPT_GCPKMS_INSECURE"
)

// resolveTimeout bounds the calls to key services for the public keys.
const resolveTimeout = time.Minute

// recipientResolver finds the public keys that one -r argument names.
type recipientResolver interface {
	resolveRecipient(ctx context.Context, spec string) ([]jwe.PublicKey, error)
}

// recipients are the keys to encrypt to, looked up once on first use: a
// run with nothing left to encrypt reaches no key service.
type recipients struct {
	resolver recipientResolver
	specs    []string
	kid      string // --kid, for a single key file
	keys     []jwe.PublicKey
}

// publicKeys returns the keys of all recipients. Two recipients with the same
// key ID are an error: the webhook could not tell them apart.
func (r *recipients) publicKeys(ctx context.Context) ([]jwe.PublicKey, error) {
	if r.keys != nil {
		return r.keys, nil
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	var keys []jwe.PublicKey
	from := map[string]string{} // spec by key ID
	for _, spec := range r.specs {
		pks, err := r.resolver.resolveRecipient(ctx, spec)
		if err != nil {
			return nil, err
		}
		for _, pk := range pks {
			if prev, ok := from[pk.KeyID]; ok {
				return nil, fmt.Errorf("recipient %q: key %q is given by %q already", spec, pk.KeyID, prev)
			}
			from[pk.KeyID] = spec
			keys = append(keys, pk)
		}
	}
	if r.kid != "" {
		if len(keys) != 1 || isKeyService(r.specs[0]) {
			return nil, fmt.Errorf("--kid applies to a file with one key; %q holds %d, or names a key service whose key ID is its version", r.specs[0], len(keys))
		}
		keys[0].KeyID = r.kid
	}
	r.keys = keys
	return keys, nil
}

func isKeyService(spec string) bool {
	return strings.HasPrefix(spec, gcpkmsScheme) || strings.HasPrefix(spec, vaultScheme) || isCloudService(spec)
}

// keyServices resolves -r arguments: key files, Cloud KMS keys, Vault
// transit keys, AWS KMS keys and Key Vault keys. It reads the key services'
// settings from the environment.
type keyServices struct {
	getenv  func(string) string
	warnf   func(format string, args ...any)
	gcp     *gcpkms.Client // made on first use
	aws     *awskms.Client // made on first use
	azure   *azkv.Client   // made on first use
	closers []func()       // of the Vault keys opened
}

var _ recipientResolver = (*keyServices)(nil)

func (s *keyServices) resolveRecipient(ctx context.Context, spec string) ([]jwe.PublicKey, error) {
	switch {
	case strings.HasPrefix(spec, gcpkmsScheme):
		return s.gcpKMS(ctx, strings.TrimPrefix(spec, gcpkmsScheme))
	case strings.HasPrefix(spec, vaultScheme):
		return s.vault(ctx, spec)
	case strings.HasPrefix(spec, awskmsScheme):
		return s.awsKMS(ctx, strings.TrimPrefix(spec, awskmsScheme))
	case strings.HasPrefix(spec, azurekvScheme):
		return s.azureKV(ctx, spec)
	case isURL(spec):
		return s.keySet(ctx, spec)
	case strings.Contains(spec, "://"):
		return nil, withHint(fmt.Errorf("recipient %q: unknown key service", spec),
			"a recipient is a public key file, a key set URL (https://…/keys), gcpkms://projects/…, vault://MOUNT/KEY, awskms://ARN or azurekv://VAULT/keys/NAME")
	}
	keys, err := local.LoadPublicFile(spec)
	if err != nil && strings.Contains(err.Error(), "private key") {
		return nil, withHint(err, "give custodians the public key: openssl pkey -in KEY -pubout")
	}
	return keys, err
}

// close releases the Cloud KMS connection and the Vault keys.
func (s *keyServices) close() {
	if s.gcp != nil {
		_ = s.gcp.Close()
	}
	for _, c := range s.closers {
		c()
	}
}

func (s *keyServices) gcpKMS(ctx context.Context, name string) ([]jwe.PublicKey, error) {
	if err := s.gcpClient(ctx); err != nil {
		return nil, err
	}
	k, err := s.gcp.Key(name)
	if err != nil {
		return nil, withHint(err, "write %sprojects/P/locations/L/keyRings/R/cryptoKeys/K, with /cryptoKeyVersions/N for one version", gcpkmsScheme)
	}
	pk, err := k.PublicKey(ctx)
	if errors.Is(err, gcpkms.ErrPermissionDenied) {
		return nil, withHint(err, "you need cloudkms.cryptoKeyVersions.viewPublicKey on the key (role roles/cloudkms.publicKeyViewer), and cloudkms.cryptoKeyVersions.list to name a crypto key rather than a version")
	}
	if err != nil {
		return nil, err
	}
	return []jwe.PublicKey{pk}, nil
}

// gcpClient connects to Cloud KMS on first use.
func (s *keyServices) gcpClient(ctx context.Context) error {
	ep, err := gcpEndpoint(s.getenv)
	if err != nil {
		return err
	}
	return connect(&s.gcp, func() (*gcpkms.Client, error) {
		return gcpkms.NewClient(ctx, ep.ClientOptions()...)
	}, "Cloud KMS is reached with Application Default Credentials: run 'gcloud auth application-default login'")
}

// connect sets *client to the client dial makes, unless it is set already:
// a key service's client is made on first use. A failure gets hint.
func connect[C any](client **C, dial func() (*C, error), hint string) error {
	if *client != nil {
		return nil
	}
	c, err := dial()
	if err != nil {
		return withHint(err, "%s", hint)
	}
	*client = c
	return nil
}

// gcpEndpoint is JWE_ENCRYPT_GCPKMS_ENDPOINT, in plaintext and without
// credentials when JWE_ENCRYPT_GCPKMS_INSECURE is 1, which only a loopback
// address may be.
func gcpEndpoint(getenv func(string) string) (gcpkms.Endpoint, error) {
	ep := gcpkms.Endpoint{Address: getenv(envGCPKMSEndpoint)}
	if ep.Address == "" || getenv(envGCPKMSInsecure) != "1" {
		return ep, nil
	}
	host, _, err := net.SplitHostPort(ep.Address)
	ip := net.ParseIP(host)
	if err != nil || host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return ep, fmt.Errorf("%s=1 is for a test server on a loopback address, and %s is %q", envGCPKMSInsecure, envGCPKMSEndpoint, ep.Address)
	}
	ep.Insecure = true
	return ep, nil
}

func (s *keyServices) vault(ctx context.Context, spec string) ([]jwe.PublicKey, error) {
	k, version, err := s.vaultKey(ctx, spec)
	if err != nil {
		return nil, err
	}
	defer k.Close()
	var pk jwe.PublicKey
	if version == 0 {
		pk, err = k.PublicKey(ctx)
	} else {
		pk, err = k.PublicKeyVersion(ctx, version)
	}
	if errors.Is(err, vault.ErrPermissionDenied) {
		mount, key, _, _ := vault.ParseKeyID(spec)
		return nil, withHint(err, "your token needs read on %s/keys/%s", mount, key)
	}
	if err != nil {
		return nil, err
	}
	return []jwe.PublicKey{pk}, nil
}

// vaultKey connects to the Vault transit key spec names, with the settings
// of the environment, and returns it with the version spec names (0 for
// none). The caller closes it.
func (s *keyServices) vaultKey(ctx context.Context, spec string) (*vault.Key, int, error) {
	mount, key, version, err := vault.ParseKeyID(spec)
	if err != nil {
		return nil, 0, withHint(err, "write %sMOUNT/KEY, with ?version=N for one version", vaultScheme)
	}
	cfg := vault.Config{
		Address:   s.getenv("VAULT_ADDR"),
		Namespace: s.getenv("VAULT_NAMESPACE"),
		Mount:     mount,
		Key:       key,
		TLS:       vault.TLSConfig{CACert: s.getenv("VAULT_CACERT")},
		Auth:      vault.AuthConfig{Method: vault.AuthToken, Token: s.getenv("VAULT_TOKEN")},
	}
	if cfg.Address == "" {
		return nil, 0, withHint(errors.New("VAULT_ADDR is not set"), "export VAULT_ADDR=https://vault.example.com:8200, the Vault that holds %s", spec)
	}
	if skip, _ := strconv.ParseBool(s.getenv("VAULT_SKIP_VERIFY")); skip {
		s.warnf("VAULT_SKIP_VERIFY is ignored: a key must come from the real Vault (set VAULT_CACERT to trust its CA)")
	}
	if cfg.Auth.Token == "" {
		cfg.Auth.TokenFile = filepath.Join(s.getenv("HOME"), ".vault-token")
		if _, err := os.Stat(cfg.Auth.TokenFile); err != nil {
			return nil, 0, withHint(errors.New("no Vault token: VAULT_TOKEN is not set and there is no ~/.vault-token"), "log in with 'vault login', or export VAULT_TOKEN")
		}
	}
	k, err := vault.New(ctx, cfg, nil)
	if err != nil {
		return nil, 0, withHint(err, "check VAULT_ADDR and your token ('vault token lookup')")
	}
	return k, version, nil
}

// decrypter returns the key service key spec names (gcpkms://…, vault://…,
// awskms://… or azurekv://…), to open values with. It is closed with the keyServices.
func (s *keyServices) decrypter(ctx context.Context, spec string) (kms.Decrypter, error) {
	if d, ok, err := s.cloudDecrypter(ctx, spec); ok {
		return d, err
	}
	if strings.HasPrefix(spec, gcpkmsScheme) {
		if err := s.gcpClient(ctx); err != nil {
			return nil, err
		}
		k, err := s.gcp.Key(strings.TrimPrefix(spec, gcpkmsScheme))
		if err != nil {
			return nil, withHint(err, "write %sprojects/P/locations/L/keyRings/R/cryptoKeys/K, with /cryptoKeyVersions/N for one version", gcpkmsScheme)
		}
		return k, nil
	}
	k, _, err := s.vaultKey(ctx, spec)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { _ = k.Close() })
	return k, nil
}
