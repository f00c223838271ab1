package vault_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/kmstest"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/vault"
)

// target is a Vault to run the cases against: the in-process stand-in or a
// real server.
type target struct {
	addr      string
	token     string // allowed to manage transit mounts and keys
	namespace string
	caCert    string // PEM file; empty for the system roots
	// keyType is the type of the keys the cases create: rsa-2048 against the
	// stand-in (fast), rsa-4096 against Vault, as deployments use.
	keyType string
}

// vaultEnv is a transit mount on a target, with an admin client for setup.
type vaultEnv struct {
	target
	mount string
	admin *api.Client
}

// runCases runs the cases that make sense against any Vault. Each case
// creates its own keys on one transit mount: a fresh random one when the token
// may mount engines, else "transit". Everything is removed afterwards.
func runCases(t *testing.T, tg target) {
	e := setUp(t, tg)
	cases := []struct {
		name string
		run  func(*testing.T, *vaultEnv)
	}{
		{"RoundTrip", caseRoundTrip},
		{"VaultEncryptedKey", caseVaultEncryptedKey},
		{"Rotation", caseRotation},
		{"MinDecryptionVersion", caseMinDecryptionVersion},
		{"BadToken", caseBadToken},
		{"KidOfAnotherKey", caseKidOfAnotherKey},
		{"WrongKeyMaterial", caseWrongKeyMaterial},
		{"VersionTooNew", caseVersionTooNew},
		{"RSAOAEPRefused", caseRSAOAEPRefused},
		{"NotAnRSAKey", caseNotAnRSAKey},
		{"MissingKey", caseMissingKey},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, e)
		})
	}
}

func setUp(t *testing.T, tg target) *vaultEnv {
	t.Helper()
	admin := newAdmin(t, tg)
	e := &vaultEnv{target: tg, admin: admin, mount: "jwe-webhook-test-" + randomName()}
	ctx := context.Background()
	err := admin.Sys().MountWithContext(ctx, e.mount, &api.MountInput{Type: "transit"})
	switch {
	case err == nil:
		t.Cleanup(func() {
			if err := admin.Sys().UnmountWithContext(context.Background(), e.mount); err != nil {
				t.Errorf("disable mount %q: %v", e.mount, err)
			}
		})
	case isStatus(err, 403):
		t.Logf("the token may not mount engines (%v): using the transit mount", err)
		e.mount = "transit"
	default:
		t.Fatalf("mount transit at %q: %v", e.mount, err)
	}
	return e
}

// newAdmin returns a Vault client with the target's token, for setup.
func newAdmin(t *testing.T, tg target) *api.Client {
	t.Helper()
	conf := api.DefaultConfig()
	conf.Address = tg.addr
	if tg.caCert != "" {
		if err := conf.ConfigureTLS(&api.TLSConfig{CACert: tg.caCert}); err != nil {
			t.Fatal(err)
		}
	}
	admin, err := api.NewClient(conf)
	if err != nil {
		t.Fatal(err)
	}
	admin.SetToken(tg.token)
	admin.SetNamespace(tg.namespace)
	return admin
}

// createKey creates a transit key of the target's key type with a random name
// and deletes it after the test.
func (e *vaultEnv) createKey(t *testing.T) string {
	t.Helper()
	return e.createKeyOfType(t, e.keyType)
}

func (e *vaultEnv) createKeyOfType(t *testing.T, typ string) string {
	t.Helper()
	name := "jwe-webhook-test-" + randomName()
	e.write(t, "keys/"+name, map[string]any{"type": typ})
	t.Cleanup(func() {
		ctx := context.Background()
		if _, err := e.admin.Logical().WriteWithContext(ctx, e.mount+"/keys/"+name+"/config", map[string]any{"deletion_allowed": true}); err != nil {
			t.Errorf("allow deleting key %q: %v", name, err)
			return
		}
		if _, err := e.admin.Logical().DeleteWithContext(ctx, e.mount+"/keys/"+name); err != nil {
			t.Errorf("delete key %q: %v", name, err)
		}
	})
	return name
}

// write writes data to <mount>/<path> with the admin token.
func (e *vaultEnv) write(t *testing.T, path string, data map[string]any) *api.Secret {
	t.Helper()
	s, err := e.admin.Logical().WriteWithContext(context.Background(), e.mount+"/"+path, data)
	if err != nil {
		t.Fatalf("write %s/%s: %v", e.mount, path, err)
	}
	return s
}

// config returns a token-auth Config for the transit key name.
func (e *vaultEnv) config(name string) vault.Config {
	return vault.Config{
		Address:   e.addr,
		Namespace: e.namespace,
		Mount:     e.mount,
		Key:       name,
		TLS:       vault.TLSConfig{CACert: e.caCert},
		Auth:      vault.AuthConfig{Method: vault.AuthToken, Token: e.token},
		Timeout:   30 * time.Second,
	}
}

// newKey returns the provider for the transit key name, closed after the test.
func (e *vaultEnv) newKey(t *testing.T, name string) *vault.Key {
	t.Helper()
	return newKey(t, e.config(name))
}

func newKey(t *testing.T, cfg vault.Config) *vault.Key {
	t.Helper()
	k, err := vault.New(t.Context(), cfg, nil)
	if err != nil {
		t.Fatalf("vault.New: %v", err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return k
}

// unwrapper feeds jwe's decryption through a vault.Key, as the keyring does.
type unwrapper struct{ k *vault.Key }

func (u unwrapper) Unwrap(ctx context.Context, r jwe.Recipient) ([]byte, error) {
	return u.k.Unwrap(ctx, r)
}

// encrypt encrypts plaintext to pk as the custodian CLI does.
func encrypt(t *testing.T, pk jwe.PublicKey, plaintext string) *jwe.Object {
	t.Helper()
	return encryptAlg(t, pk, pk.Algorithm, plaintext)
}

func encryptAlg(t *testing.T, pk jwe.PublicKey, alg, plaintext string) *jwe.Object {
	t.Helper()
	return kmstest.Seal(t, pk, alg, plaintext)
}

// decrypt decrypts obj with k and checks the plaintext.
func decrypt(t *testing.T, k *vault.Key, obj *jwe.Object, want string) {
	t.Helper()
	got, r, err := obj.Decrypt(t.Context(), unwrapper{k})
	if err != nil {
		t.Fatalf("decrypt value for %q: %v", obj.KeyIDs(), err)
	}
	if string(got) != want {
		t.Fatalf("decrypted %q, want %q", got, want)
	}
	if !k.MatchKeyID(r.KeyID) {
		t.Errorf("recipient kid %q does not match the key", r.KeyID)
	}
}

// decryptErr decrypts obj with k and returns the error.
func decryptErr(t *testing.T, k *vault.Key, obj *jwe.Object) error {
	t.Helper()
	_, _, err := obj.Decrypt(t.Context(), unwrapper{k})
	if err == nil {
		t.Fatalf("value for %q decrypted", obj.KeyIDs())
	}
	return err
}

func publicKey(t *testing.T, k *vault.Key) jwe.PublicKey {
	t.Helper()
	pk, err := k.PublicKey(t.Context())
	if err != nil {
		t.Fatalf("PublicKey: %v", err)
	}
	return pk
}

func caseRoundTrip(t *testing.T, e *vaultEnv) {
	name := e.createKey(t)
	k := e.newKey(t, name)
	if got, want := k.KeyID(), "vault://"+e.mount+"/"+name; got != want {
		t.Errorf("KeyID() = %q, want %q", got, want)
	}
	pk := publicKey(t, k)
	if want := vault.KeyIDFor(e.mount, name, 1); pk.KeyID != want || pk.Algorithm != "RSA-OAEP-256" {
		t.Errorf("PublicKey: kid %q alg %q, want %q RSA-OAEP-256", pk.KeyID, pk.Algorithm, want)
	}
	decrypt(t, k, encrypt(t, pk, "s3cret password"), "s3cret password")
}

// caseVaultEncryptedKey checks that Unwrap speaks Vault's ciphertext format:
// a content key that Vault's own encrypt endpoint wrapped unwraps.
func caseVaultEncryptedKey(t *testing.T, e *vaultEnv) {
	name := e.createKey(t)
	k := e.newKey(t, name)
	cek := make([]byte, 32)
	rand.Read(cek)
	s := e.write(t, "encrypt/"+name, map[string]any{"plaintext": base64.StdEncoding.EncodeToString(cek)})
	ct, _ := s.Data["ciphertext"].(string)
	b64, ok := strings.CutPrefix(ct, "vault:v1:")
	if !ok {
		t.Fatalf("Vault's ciphertext %.12q… lacks the prefix vault:v1:", ct)
	}
	encryptedKey, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.Unwrap(t.Context(), jwe.Recipient{KeyID: vault.KeyIDFor(e.mount, name, 1), Algorithm: "RSA-OAEP-256", EncryptedKey: encryptedKey})
	if err != nil {
		t.Fatalf("Unwrap: %v", err)
	}
	if !bytes.Equal(got, cek) {
		t.Fatal("Unwrap returned another key than Vault encrypted")
	}
}

// rotated creates a key, encrypts a value to version 1, rotates and encrypts
// another to version 2.
func rotated(t *testing.T, e *vaultEnv) (k *vault.Key, pk1 jwe.PublicKey, v1, v2 *jwe.Object) {
	t.Helper()
	name := e.createKey(t)
	k = e.newKey(t, name)
	pk1 = publicKey(t, k)
	v1 = encrypt(t, pk1, "old password")
	e.write(t, "keys/"+name+"/rotate", map[string]any{})
	pk2 := publicKey(t, k)
	if want := vault.KeyIDFor(e.mount, name, 2); pk2.KeyID != want {
		t.Fatalf("after rotation PublicKey kid = %q, want %q", pk2.KeyID, want)
	}
	return k, pk1, v1, encrypt(t, pk2, "new password")
}

func caseRotation(t *testing.T, e *vaultEnv) {
	k, pk1, v1, v2 := rotated(t, e)
	if v1.KeyIDs()[0] == v2.KeyIDs()[0] {
		t.Fatalf("both values name kid %q", v1.KeyIDs()[0])
	}
	decrypt(t, k, v1, "old password")
	decrypt(t, k, v2, "new password")
	again, err := k.PublicKeyVersion(t.Context(), 1)
	if err != nil {
		t.Fatalf("PublicKeyVersion(1): %v", err)
	}
	if again.KeyID != pk1.KeyID || !pk1.Key.(*rsa.PublicKey).Equal(again.Key) {
		t.Errorf("PublicKeyVersion(1) = %q, not the version 1 key %q", again.KeyID, pk1.KeyID)
	}
	all, err := k.PublicKeys(t.Context())
	if err != nil || len(all) != 2 || all[0].KeyID != pk1.KeyID || all[1].KeyID != v2.KeyIDs()[0] {
		t.Errorf("PublicKeys = %v, %v; want versions 1 and 2", all, err)
	}
}

func caseMinDecryptionVersion(t *testing.T, e *vaultEnv) {
	k, _, v1, v2 := rotated(t, e)
	name := strings.TrimPrefix(k.KeyID(), "vault://"+e.mount+"/")
	e.write(t, "keys/"+name+"/config", map[string]any{"min_decryption_version": 2})
	err := decryptErr(t, k, v1)
	if !errors.Is(err, vault.ErrVersionTooOld) || errors.Is(err, jwe.ErrKeyMismatch) {
		t.Errorf("version 1 below min_decryption_version: %v, want ErrVersionTooOld and no mismatch", err)
	}
	if !strings.Contains(err.Error(), "min_decryption_version") {
		t.Errorf("error %q does not name min_decryption_version", err)
	}
	decrypt(t, k, v2, "new password")
	if _, err := k.PublicKeyVersion(t.Context(), 1); err == nil {
		t.Error("PublicKeyVersion(1) below min_decryption_version succeeded")
	}
	if all, err := k.PublicKeys(t.Context()); err != nil || len(all) != 1 || all[0].KeyID != v2.KeyIDs()[0] {
		t.Errorf("PublicKeys = %v, %v; want version 2 only", all, err)
	}
}

func caseBadToken(t *testing.T, e *vaultEnv) {
	name := e.createKey(t)
	cfg := e.config(name)
	cfg.Auth.Token = "hvs.not-a-token-" + randomName()
	_, err := vault.New(t.Context(), cfg, nil)
	if !errors.Is(err, vault.ErrPermissionDenied) {
		t.Fatalf("New with a bad token: %v, want ErrPermissionDenied", err)
	}
	if strings.Contains(err.Error(), cfg.Auth.Token) {
		t.Errorf("error %q holds the token", err)
	}
}

func caseKidOfAnotherKey(t *testing.T, e *vaultEnv) {
	name := e.createKey(t)
	k := e.newKey(t, name)
	obj := encrypt(t, publicKey(t, k), "x")
	for _, kid := range []string{
		vault.KeyIDFor(e.mount, name+"-other", 1),
		vault.KeyIDFor(e.mount+"-other", name, 1),
		vault.KeyIDFor(e.mount, name, 0),
		"projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1",
	} {
		w := obj.Recipients[0]
		w.KeyID = kid
		if _, err := k.Unwrap(t.Context(), w); !errors.Is(err, jwe.ErrKeyMismatch) {
			t.Errorf("Unwrap with kid %q: %v, want ErrKeyMismatch", kid, err)
		}
	}
}

// caseWrongKeyMaterial names this key's kid on a value encrypted to another
// key: Vault's decryption fails, and that is a mismatch.
func caseWrongKeyMaterial(t *testing.T, e *vaultEnv) {
	k := e.newKey(t, e.createKey(t))
	other := e.newKey(t, e.createKey(t))
	pk := publicKey(t, other)
	pk.KeyID = publicKey(t, k).KeyID
	err := decryptErr(t, k, encrypt(t, pk, "x"))
	if !errors.Is(err, jwe.ErrKeyMismatch) {
		t.Errorf("value for another key: %v, want ErrKeyMismatch", err)
	}
}

func caseVersionTooNew(t *testing.T, e *vaultEnv) {
	name := e.createKey(t)
	k := e.newKey(t, name)
	pk := publicKey(t, k)
	pk.KeyID = vault.KeyIDFor(e.mount, name, 9)
	// A mismatch, so another recipient may still open the value; and a
	// missing key, an answer that will not change in seconds.
	if err := decryptErr(t, k, encrypt(t, pk, "x")); !errors.Is(err, jwe.ErrKeyMismatch) || !errors.Is(err, kms.ErrKeyNotFound) {
		t.Errorf("version 9 of a key at version 1: %v, want ErrKeyMismatch and ErrKeyNotFound", err)
	}
}

func caseRSAOAEPRefused(t *testing.T, e *vaultEnv) {
	k := e.newKey(t, e.createKey(t))
	err := decryptErr(t, k, encryptAlg(t, publicKey(t, k), "RSA-OAEP", "x"))
	if errors.Is(err, jwe.ErrKeyMismatch) || !strings.Contains(err.Error(), "SHA-256") {
		t.Errorf("RSA-OAEP value: %v, want a refusal naming SHA-256", err)
	}
}

func caseNotAnRSAKey(t *testing.T, e *vaultEnv) {
	k := e.newKey(t, e.createKeyOfType(t, "aes256-gcm96"))
	_, err := k.PublicKey(t.Context())
	if err == nil || !strings.Contains(err.Error(), `"aes256-gcm96" key, not rsa-2048, rsa-3072 or rsa-4096`) {
		t.Errorf("PublicKey of an aes256-gcm96 key: %v", err)
	}
}

func caseMissingKey(t *testing.T, e *vaultEnv) {
	k := e.newKey(t, "jwe-webhook-test-missing-"+randomName())
	if _, err := k.PublicKey(t.Context()); err == nil || !strings.Contains(err.Error(), "no transit key") {
		t.Errorf("PublicKey of a missing key: %v", err)
	}
}

func isStatus(err error, status int) bool {
	var re *api.ResponseError
	return errors.As(err, &re) && re.StatusCode == status
}

// randomName returns 8 random lowercase letters and digits.
func randomName() string { return strings.ToLower(rand.Text()[:8]) }
