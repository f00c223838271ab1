package vault_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jwe-webhook/jwe-webhook/internal/kms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/kmstest"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/vault"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/vault/vaulttest"
)

// sharedService runs the cases every key service passes against the
// stand-in Vault, with a token of its own that PermissionDenied revokes.
type sharedService struct {
	srv   *vaulttest.Server
	token string
	n     int // keys made
}

func (s *sharedService) config(name string) vault.Config {
	return vault.Config{
		Address: s.srv.URL, Mount: "transit", Key: name,
		Auth: vault.AuthConfig{Method: vault.AuthToken, Token: s.token},
	}
}

func (s *sharedService) Algorithms() []string { return []string{"RSA-OAEP-256"} }

func (s *sharedService) NewKey(t *testing.T, _ string) kmstest.Key {
	s.n++
	name := fmt.Sprintf("key-%d", s.n)
	if err := s.srv.CreateKey("transit", name, "rsa-2048"); err != nil {
		t.Fatal(err)
	}
	return newKey(t, s.config(name))
}

func (s *sharedService) Rotate(t *testing.T, k kmstest.Key) kmstest.Key {
	rotate(t, s.srv, s.config(strings.TrimPrefix(k.KeyID(), "vault://transit/")))
	return k
}

// MismatchedKey is an RSA key asked for RSA-OAEP: Vault transit decrypts
// RSA-OAEP with SHA-256 only.
func (s *sharedService) MismatchedKey(t *testing.T) (kms.Decrypter, string, string) {
	k := s.NewKey(t, "")
	return k, vault.KeyIDFor("transit", strings.TrimPrefix(k.KeyID(), "vault://transit/"), 1), "RSA-OAEP"
}

func (s *sharedService) SetFault(t *testing.T, f kmstest.Fault) bool {
	s.srv.SetUnavailable(f == kmstest.Unavailable)
	s.srv.SetDelay(map[bool]time.Duration{true: time.Hour}[f == kmstest.Slow])
	if f == kmstest.PermissionDenied {
		s.srv.RevokeToken(s.token)
	}
	return true
}

func (s *sharedService) DecryptCalls() int { return s.srv.Calls(vaulttest.OpDecrypt) }
func (s *sharedService) IsPermissionDenied(err error) bool {
	return errors.Is(err, vault.ErrPermissionDenied)
}
func (s *sharedService) IsUnavailable(err error) bool {
	return strings.Contains(err.Error(), "vault: HTTP 503")
}

func TestShared(t *testing.T) {
	t.Parallel()
	kmstest.Run(t, func(t *testing.T) kmstest.Service {
		s := &sharedService{srv: startFake(t, vaulttest.Options{}), token: "shared-" + randomName()}
		s.srv.AddToken(s.token, vaulttest.TokenOptions{})
		return s
	})
}
