package e2e_test

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"cloud.google.com/go/kms/apiv1/kmspb"

	"github.com/jwe-webhook/jwe-webhook/internal/kms/gcpkms/gcpkmstest"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/vault/vaulttest"
)

// The keys the fakes hold. The webhook's key configuration names kmsKey and
// vaultKey for every namespace, kmsRestricted and vaultRestricted only for
// namespaces matching restrictedPrefix+"*"; kmsUnconfigured is in the fake
// Cloud KMS but not in the key configuration.
const (
	kmsKeyRing       = "projects/e2e/locations/global/keyRings/e2e/cryptoKeys/"
	kmsKey           = kmsKeyRing + "secrets"
	kmsRestricted    = kmsKeyRing + "restricted"
	kmsUnconfigured  = kmsKeyRing + "not-configured"
	vaultMount       = "transit"
	vaultKey         = "secrets"
	vaultRestricted  = "restricted"
	restrictedPrefix = "restricted-"
)

// Recipients for jwe-encrypt -r.
const (
	kmsRecipient             = "gcpkms://" + kmsKey
	kmsRestrictedRecipient   = "gcpkms://" + kmsRestricted
	kmsUnconfiguredRecipient = "gcpkms://" + kmsUnconfigured
	vaultRecipient           = "vault://" + vaultMount + "/" + vaultKey
	vaultRestrictedRecipient = "vault://" + vaultMount + "/" + vaultRestricted
)

// keyServices are a fake Cloud KMS (gRPC) and a fake Vault (HTTP) in the test
// process on loopback ports, which the webhook process reaches as it would
// the real services. Either can be stopped and started again on the same
// address.
type keyServices struct {
	kms      *gcpkmstest.Server
	kmsAddr  string
	kmsKeys  map[string]*rsa.PrivateKey // by key version name
	vault    *vaulttest.Server
	vaultURL string
	vaultSrv *http.Server // serves vault on vaultURL's address
	// tokenFile holds the Vault token the webhook logs in with.
	tokenFile string
}

// keys is shared by every test, like cluster. Set once by TestMain.
var keys *keyServices

// startKeyServices starts both fakes and creates their keys; dir receives
// the Vault token file.
func startKeyServices(dir string) (*keyServices, error) {
	ks := &keyServices{kmsAddr: "127.0.0.1:0", kmsKeys: map[string]*rsa.PrivateKey{}}
	for _, key := range []string{kmsKey, kmsRestricted, kmsUnconfigured} {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		ks.kmsKeys[key+"/cryptoKeyVersions/1"] = k
	}
	if err := ks.StartKMS(); err != nil {
		return nil, err
	}
	// vaulttest serves on a port of its own; the suite serves the same handler
	// on a listener it can close and open again.
	ks.vault = vaulttest.New(vaulttest.Options{Transit: []string{vaultMount}})
	ks.vaultURL = "http://127.0.0.1:0"
	for _, key := range []string{vaultKey, vaultRestricted} {
		if err := ks.vault.CreateKey(vaultMount, key, "rsa-2048"); err != nil {
			ks.Close()
			return nil, fmt.Errorf("fake vault: create key %q: %w", key, err)
		}
	}
	if err := ks.StartVault(); err != nil {
		ks.Close()
		return nil, err
	}
	ks.tokenFile = filepath.Join(dir, "vault-token")
	if err := os.WriteFile(ks.tokenFile, []byte(ks.vault.RootToken), 0o600); err != nil {
		ks.Close()
		return nil, err
	}
	return ks, nil
}

// StartKMS starts the fake Cloud KMS on its address (a free port the first
// time) with every key version.
func (ks *keyServices) StartKMS() error {
	s, err := gcpkmstest.NewServer(ks.kmsAddr)
	if err != nil {
		return err
	}
	for name, k := range ks.kmsKeys {
		if err := s.AddVersion(name, kmspb.CryptoKeyVersion_RSA_DECRYPT_OAEP_2048_SHA256, k); err != nil {
			s.Close()
			return err
		}
	}
	ks.kms, ks.kmsAddr = s, s.Addr()
	return nil
}

// StopKMS stops the fake Cloud KMS: connections are refused.
func (ks *keyServices) StopKMS() { ks.kms.Close() }

// StartVault serves the fake Vault on vaultURL's address (a free port the
// first time).
func (ks *keyServices) StartVault() error {
	l, err := net.Listen("tcp", strings.TrimPrefix(ks.vaultURL, "http://"))
	if err != nil {
		return fmt.Errorf("fake vault: %w", err)
	}
	ks.vaultURL = "http://" + l.Addr().String()
	ks.vaultSrv = &http.Server{Handler: ks.vault, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := ks.vaultSrv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "e2e: fake vault: %v\n", err)
		}
	}()
	return nil
}

// StopVault closes the fake Vault's listener and connections: connections
// are refused.
func (ks *keyServices) StopVault() { ks.vaultSrv.Close() }

// Close stops both fakes.
func (ks *keyServices) Close() {
	if ks.kms != nil {
		ks.kms.Close()
	}
	if ks.vaultSrv != nil {
		ks.vaultSrv.Close()
	}
	if ks.vault != nil {
		ks.vault.Close()
	}
}

// KeyConfig returns the entries of the webhook's key configuration for the
// fakes' keys (see internal/kms/keyconfig).
func (ks *keyServices) KeyConfig() []any {
	gcp := func(name string) map[string]any {
		return map[string]any{"provider": "gcpkms", "gcpkms": map[string]any{"name": name, "endpoint": ks.kmsAddr, "insecure": true}}
	}
	vault := func(key string) map[string]any {
		return map[string]any{"provider": "vault", "vault": map[string]any{
			"address": ks.vaultURL, "mount": vaultMount, "key": key,
			"auth": map[string]any{"method": "token", "tokenFile": ks.tokenFile},
		}}
	}
	restricted := []string{restrictedPrefix + "*"}
	kmsRestrictedEntry, vaultRestrictedEntry := gcp(kmsRestricted), vault(vaultRestricted)
	kmsRestrictedEntry["namespaces"], vaultRestrictedEntry["namespaces"] = restricted, restricted
	return []any{gcp(kmsKey), kmsRestrictedEntry, vault(vaultKey), vaultRestrictedEntry}
}

// EncryptEnv points jwe-encrypt at the fakes.
func (ks *keyServices) EncryptEnv() []string {
	return []string{
		"JWE_ENCRYPT_GCPKMS_ENDPOINT=" + ks.kmsAddr,
		"JWE_ENCRYPT_GCPKMS_INSECURE=1",
		"VAULT_ADDR=" + ks.vaultURL,
		"VAULT_TOKEN=" + ks.vault.RootToken,
	}
}

// decryptCalls counts the unwrap calls both fakes received.
func (ks *keyServices) decryptCalls() (kms, vault int) {
	return ks.kms.Calls().AsymmetricDecrypt, ks.vault.Calls(vaulttest.OpDecrypt)
}
