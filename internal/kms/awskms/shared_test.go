package awskms_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jwe-webhook/jwe-webhook/internal/kms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/awskms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/awskms/awskmstest"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/kmstest"
)

// fake is the in-process AWS KMS with a client connected to it.
type fake struct {
	srv    *awskmstest.Server
	client *awskms.Client
	n      int // keys made
}

func newFake(t *testing.T) *fake {
	t.Helper()
	srv := awskmstest.Start(t)
	c, err := awskms.NewClient(t.Context(), srv.Options()...)
	if err != nil {
		t.Fatal(err)
	}
	return &fake{srv: srv, client: c}
}

// addKey adds a key of usage (ENCRYPT_DECRYPT or SIGN_VERIFY) in
// eu-west-1, each with other key material than the last, and returns its
// ARN.
func (f *fake) addKey(t *testing.T, usage string) string {
	t.Helper()
	f.n++
	arn := fmt.Sprintf("arn:aws:kms:eu-west-1:111122223333:key/0000000%d-1111-2222-3333-444444444444", f.n)
	add := f.srv.AddKey
	if usage == "SIGN_VERIFY" {
		add = f.srv.AddSigningKey
	}
	if err := add(arn, kmstest.RSAKey(t, f.n)); err != nil {
		t.Fatal(err)
	}
	return arn
}

func (f *fake) key(t *testing.T, arn string) *awskms.Key {
	t.Helper()
	k, err := f.client.Key(arn)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// service runs the shared cases against the fake.
type service struct{ *fake }

func (s service) Algorithms() []string { return []string{"RSA-OAEP-256", "RSA-OAEP"} }

func (s service) NewKey(t *testing.T, alg string) kmstest.Key {
	return s.key(t, s.addKey(t, "ENCRYPT_DECRYPT"))
}

// Rotate makes a new key: AWS KMS does not rotate asymmetric keys.
func (s service) Rotate(t *testing.T, _ kmstest.Key) kmstest.Key {
	return s.NewKey(t, "RSA-OAEP-256")
}

func (s service) MismatchedKey(t *testing.T) (kms.Decrypter, string, string) {
	arn := s.addKey(t, "SIGN_VERIFY")
	return s.key(t, arn), arn, "RSA-OAEP-256"
}

func (s service) SetFault(t *testing.T, f kmstest.Fault) bool {
	s.srv.SetFaults(map[kmstest.Fault]awskmstest.Faults{
		kmstest.PermissionDenied: {Error: "AccessDeniedException"},
		kmstest.Unavailable:      {Error: "ServiceUnavailableException"},
		kmstest.Slow:             {Delay: time.Hour},
	}[f])
	return true
}

func (s service) DecryptCalls() int { return s.srv.Calls().Decrypt }
func (s service) IsPermissionDenied(err error) bool {
	return errors.Is(err, awskms.ErrPermissionDenied)
}
func (s service) IsUnavailable(err error) bool { return errors.Is(err, awskms.ErrUnavailable) }

func TestShared(t *testing.T) {
	t.Parallel()
	kmstest.Run(t, func(t *testing.T) kmstest.Service { return service{newFake(t)} })
}
