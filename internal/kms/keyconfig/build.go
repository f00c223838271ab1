package keyconfig

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/awskms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/azkv"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/gcpkms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/local"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/vault"
)

// Options are what Build adds to every key.
type Options struct {
	// Keyring is what the keyring puts around every key: the key-service
	// timeout, the content-key cache, the metrics.
	Keyring kms.Options
	// Log receives the providers' own events (Vault logins, renewals).
	Log *zap.Logger
}

// Keys is a built keyring and what it holds open.
type Keys struct {
	*kms.Keyring
	closers []func()
	states  []func() KeyState // of the keys in a remote key service
	// connectBy ends the first attempts to reach the key services.
	connectBy time.Time
}

// KeyStates says for each key in a remote key service (not local keys)
// whether its service has been reached.
func (k *Keys) KeyStates() []KeyState {
	out := make([]KeyState, len(k.states))
	for i, state := range k.states {
		out[i] = state()
	}
	return out
}

// Close releases the key-service clients.
func (k *Keys) Close() {
	for _, c := range k.closers {
		c()
	}
}

// Build connects to the key services of cfg and returns the keyring. Errors
// name the file, line and field ("keys.yaml:4: keys[0].local.file: …").
func Build(ctx context.Context, cfg *File, opts Options) (*Keys, error) {
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	keys := &Keys{connectBy: time.Now().Add(connectTimeout)}
	gcp := map[GCPKMS]*gcpkms.Client{} // one client per endpoint
	cloud := &clients{aws: map[AWSKMS]*awskms.Client{}, azure: map[azureConn]*azkv.Client{}}
	var entries []kms.Entry
	seen := map[string]int{} // kid → entry
	for i, k := range cfg.Keys {
		decs, err := keys.decrypters(ctx, k, gcp, cloud, opts.Log)
		field := settingsField(k.Provider)
		if err == nil && k.KID != "" {
			decs, err = pick(decs, k.KID)
			field = "kid"
		}
		for _, d := range decs {
			if j, dup := seen[d.KeyID()]; dup && err == nil && k.Line > 0 {
				err = fmt.Errorf("key %q is configured twice, also by keys[%d] on line %d", d.KeyID(), j, cfg.Keys[j].Line)
			}
			seen[d.KeyID()] = i
		}
		if err != nil {
			keys.Close()
			return nil, cfg.entryError(i, field, err)
		}
		for _, d := range decs {
			entries = append(entries, kms.Entry{Decrypter: d, Provider: k.Provider, Namespaces: k.Namespaces, PublicKeys: publicKeys(d), KeyType: keyType(d)})
		}
	}
	kr, err := kms.NewKeyring(opts.Keyring, entries...)
	if err != nil {
		keys.Close()
		return nil, err
	}
	keys.Keyring = kr
	return keys, nil
}

// reach reaches a key service with connect, or returns a key that keeps
// trying in the background and refuses values until it succeeds.
func (keys *Keys) reach(ctx context.Context, kid, provider string, match func(string) bool, connect connectFunc, log *zap.Logger) []kms.Decrypter {
	d, release := connectOrLater(ctx, keys.connectBy, kid, provider, match, connect, log)
	if l, ok := d.(*lateKey); ok {
		keys.states = append(keys.states, l.state)
	} else {
		keys.states = append(keys.states, func() KeyState { return KeyState{KeyID: kid, Provider: provider} })
	}
	if release != nil {
		keys.closers = append(keys.closers, release)
	}
	return []kms.Decrypter{d}
}

// reachCloud returns what reaches the service of the one key a cloud
// provider opened, as reach does, by reading the key's public keys: only an
// error wrapping unavailable (no answer, or none in time) counts as
// unreachable; any other answer, a refusal included, means the service can
// be reached, and Unwrap reports it value by value.
func (keys *Keys) reachCloud(ctx context.Context, provider string, unavailable error, log *zap.Logger) func([]kms.Decrypter, error) ([]kms.Decrypter, error) {
	return func(decs []kms.Decrypter, err error) ([]kms.Decrypter, error) {
		if err != nil || len(decs) != 1 {
			return decs, err
		}
		d := decs[0]
		return keys.reach(ctx, d.KeyID(), provider, d.MatchKeyID, func(ctx context.Context) (kms.Decrypter, func(), error) {
			_, err := publicKeys(d)(ctx)
			if err != nil && (ctx.Err() != nil || errors.Is(err, unavailable)) {
				return nil, nil, err
			}
			return d, nil, nil
		}, log), nil
	}
}

// settingsField is the field of an entry that says where its key is, which
// an error opening the key points at.
func settingsField(provider string) string {
	switch provider {
	case "local":
		return "local.file"
	case "gcpkms":
		return "gcpkms.name"
	case "awskms":
		return "awskms.arn"
	case "azurekv":
		return "azurekv.key"
	}
	return provider
}

// decrypters opens the key or keys of one entry.
func (keys *Keys) decrypters(ctx context.Context, k Key, gcp map[GCPKMS]*gcpkms.Client, cloud *clients, log *zap.Logger) ([]kms.Decrypter, error) {
	switch k.Provider {
	case "local":
		ks, err := local.LoadFile(k.Local.File)
		if err != nil {
			return nil, err
		}
		out := make([]kms.Decrypter, len(ks))
		for i, key := range ks {
			out[i] = key
		}
		return out, nil
	case "gcpkms":
		conn := GCPKMS{Endpoint: k.GCPKMS.Endpoint, Insecure: k.GCPKMS.Insecure}
		client, err := cached(gcp, conn, func() (*gcpkms.Client, error) {
			ep := gcpkms.Endpoint{Address: conn.Endpoint, Insecure: conn.Insecure}
			client, err := gcpkms.NewClient(ctx, ep.ClientOptions()...)
			if err != nil {
				return nil, fmt.Errorf("connect to Cloud KMS: %w", err)
			}
			keys.closers = append(keys.closers, func() { _ = client.Close() })
			return client, nil
		})
		if err != nil {
			return nil, err
		}
		key, err := client.Key(k.GCPKMS.Name)
		if err != nil {
			return nil, err
		}
		// The client connects lazily: ask Cloud KMS once, as Vault is asked
		// when logging in, so that an unreachable service is found and
		// reported the same way.
		return keys.reach(ctx, key.KeyID(), k.Provider, key.MatchKeyID, func(ctx context.Context) (kms.Decrypter, func(), error) {
			return key, nil, key.Reach(ctx)
		}, log), nil
	case "vault":
		v := k.Vault
		method := v.Auth.Method
		if method == "" {
			method = vault.AuthKubernetes
		}
		cfg := vault.Config{
			Address: v.Address, Mount: v.Mount, Key: v.Key,
			TLS: vault.TLSConfig{CACert: v.TLS.CAFile, ServerName: v.TLS.ServerName},
			Auth: vault.AuthConfig{
				Method: method, TokenFile: v.Auth.TokenFile, Role: v.Auth.Role,
				KubernetesMount: v.Auth.Mount, ServiceAccountTokenFile: v.Auth.ServiceAccountTokenFile,
			},
		}
		if err := cfg.Check(); err != nil {
			return nil, err
		}
		vlog := log.With(zap.String("vault", v.Address), zap.String("key", v.Key))
		return keys.reach(ctx, cfg.KeyID(), k.Provider, cfg.MatchKeyID, func(ctx context.Context) (kms.Decrypter, func(), error) {
			key, err := vault.New(ctx, cfg, vlog)
			if err != nil {
				return nil, nil, err
			}
			return key, func() { _ = key.Close() }, nil
		}, log), nil
	case "awskms":
		return keys.reachCloud(ctx, k.Provider, awskms.ErrUnavailable, log)(cloud.awsKey(ctx, k.AWSKMS))
	case "azurekv":
		return keys.reachCloud(ctx, k.Provider, azkv.ErrUnavailable, log)(cloud.azureKey(ctx, k.AzureKV))
	}
	return nil, fmt.Errorf("unknown provider %q", k.Provider)
}

// publicKeys returns the function that lists a provider key's public keys,
// every provider having one.
func publicKeys(d kms.Decrypter) func(context.Context) ([]jwe.PublicKey, error) {
	switch k := d.(type) {
	case *local.Key:
		return k.PublicKeys
	case *gcpkms.Key:
		return k.PublicKeys
	case *vault.Key:
		return k.PublicKeys
	case *awskms.Key:
		return k.PublicKeys
	case *azkv.Key:
		return k.PublicKeys
	case *lateKey:
		return k.PublicKeys
	}
	return nil
}

// keyType is the kind of d's key: Cloud KMS, Vault transit, AWS KMS and Azure Key Vault keys of ours
// are RSA; a local key says.
func keyType(d kms.Decrypter) string {
	switch k := d.(type) {
	case *local.Key:
		if _, ok := k.Public().(*ecdsa.PublicKey); ok {
			return kms.KeyTypeEC
		}
		return kms.KeyTypeRSA
	case *gcpkms.Key, *vault.Key, *awskms.Key, *azkv.Key, *lateKey:
		return kms.KeyTypeRSA
	}
	return ""
}

// pick keeps the decrypter whose key ID is kid.
func pick(decs []kms.Decrypter, kid string) ([]kms.Decrypter, error) {
	var ids []string
	for _, d := range decs {
		if d.KeyID() == kid {
			return []kms.Decrypter{d}, nil
		}
		ids = append(ids, d.KeyID())
	}
	slices.Sort(ids)
	return nil, fmt.Errorf("kid %q is not the key's; it has %q", kid, ids)
}
