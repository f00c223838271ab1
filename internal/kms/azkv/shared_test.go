package azkv_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jwe-webhook/jwe-webhook/internal/kms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/azkv"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/azkv/azkvtest"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/kmstest"
)

// fake is the in-process Key Vault with a client logged in to it by
// workload identity.
type fake struct {
	srv    *azkvtest.Server
	client *azkv.Client
	n      int // versions made
}

func newFake(t *testing.T) *fake {
	t.Helper()
	srv := azkvtest.Start(t)
	c, err := azkv.NewClient(t.Context(), srv.Options(t)...)
	if err != nil {
		t.Fatal(err)
	}
	return &fake{srv: srv, client: c}
}

// addVersion adds a version to the key name, with other key material than
// the last, and returns its kid.
func (f *fake) addVersion(t *testing.T, name string, ops ...string) string {
	t.Helper()
	f.n++
	return f.srv.AddVersion(name, kmstest.RSAKey(t, f.n), ops...)
}

func (f *fake) key(t *testing.T, id string) *azkv.Key {
	t.Helper()
	k, err := f.client.Key(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// keyOf returns the key URL of a version URL.
func keyOf(kid string) string { return kid[:strings.LastIndexByte(kid, '/')] }

// service runs the shared cases against the fake.
type service struct{ *fake }

func (s service) Algorithms() []string { return []string{"RSA-OAEP-256", "RSA-OAEP"} }

// NewKey makes a key with one version and returns the Key for every version
// of it, as a key configuration usually names it.
func (s service) NewKey(t *testing.T, alg string) kmstest.Key {
	kid := s.addVersion(t, fmt.Sprintf("key-%d", s.n+1))
	return s.key(t, keyOf(kid))
}

func (s service) Rotate(t *testing.T, k kmstest.Key) kmstest.Key {
	s.addVersion(t, k.KeyID()[strings.LastIndexByte(k.KeyID(), '/')+1:])
	return k
}

func (s service) MismatchedKey(t *testing.T) (kms.Decrypter, string, string) {
	kid := s.addVersion(t, "sign-only", "sign", "verify")
	return s.key(t, kid), kid, "RSA-OAEP-256"
}

func (s service) SetFault(t *testing.T, f kmstest.Fault) bool {
	s.srv.SetFaults(map[kmstest.Fault]azkvtest.Faults{
		kmstest.PermissionDenied: {Status: http.StatusForbidden},
		kmstest.Unavailable:      {Status: http.StatusServiceUnavailable},
		kmstest.Slow:             {Delay: time.Hour},
	}[f])
	return true
}

func (s service) DecryptCalls() int                 { return s.srv.Calls().UnwrapKey }
func (s service) IsPermissionDenied(err error) bool { return errors.Is(err, azkv.ErrPermissionDenied) }
func (s service) IsUnavailable(err error) bool      { return errors.Is(err, azkv.ErrUnavailable) }

func TestShared(t *testing.T) {
	t.Parallel()
	kmstest.Run(t, func(t *testing.T) kmstest.Service { return service{newFake(t)} })
}
