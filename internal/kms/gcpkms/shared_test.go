package gcpkms_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/jwe-webhook/jwe-webhook/internal/kms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/gcpkms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/gcpkms/gcpkmstest"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/kmstest"
)

// sharedService runs the cases every key service passes against the fake
// Cloud KMS. Its keys are crypto keys standing for every version.
type sharedService struct {
	srv      *gcpkmstest.Server
	client   *gcpkms.Client
	n        int            // keys made
	versions map[string]int // per crypto key
}

var sharedAlgorithms = map[string]kmspb.CryptoKeyVersion_CryptoKeyVersionAlgorithm{
	"RSA-OAEP-256": kmspb.CryptoKeyVersion_RSA_DECRYPT_OAEP_2048_SHA256,
	"RSA-OAEP":     kmspb.CryptoKeyVersion_RSA_DECRYPT_OAEP_2048_SHA1,
}

func (s *sharedService) Algorithms() []string { return []string{"RSA-OAEP-256", "RSA-OAEP"} }

// addVersion adds the next version of the crypto key name and returns its
// name.
func (s *sharedService) addVersion(t *testing.T, name string, alg kmspb.CryptoKeyVersion_CryptoKeyVersionAlgorithm) string {
	t.Helper()
	s.n++
	s.versions[name]++
	version := fmt.Sprintf("%s/cryptoKeyVersions/%d", name, s.versions[name])
	if err := s.srv.AddVersion(version, alg, kmstest.RSAKey(t, s.n)); err != nil {
		t.Fatal(err)
	}
	return version
}

func (s *sharedService) key(t *testing.T, name string) *gcpkms.Key {
	t.Helper()
	k, err := s.client.Key(name)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (s *sharedService) NewKey(t *testing.T, alg string) kmstest.Key {
	name := fmt.Sprintf("%sk%d", ring, s.n+1)
	s.addVersion(t, name, sharedAlgorithms[alg])
	return s.key(t, name)
}

func (s *sharedService) Rotate(t *testing.T, k kmstest.Key) kmstest.Key {
	s.addVersion(t, k.KeyID(), sharedAlgorithms["RSA-OAEP-256"])
	return k
}

func (s *sharedService) MismatchedKey(t *testing.T) (kms.Decrypter, string, string) {
	v := s.addVersion(t, ring+"signing", kmspb.CryptoKeyVersion_RSA_SIGN_PSS_2048_SHA256)
	return s.key(t, v), v, "RSA-OAEP-256"
}

func (s *sharedService) SetFault(t *testing.T, f kmstest.Fault) bool {
	s.srv.SetFaults(map[kmstest.Fault]gcpkmstest.Faults{
		kmstest.PermissionDenied: {Code: codes.PermissionDenied},
		kmstest.Unavailable:      {Code: codes.Unavailable},
		kmstest.Slow:             {Delay: time.Hour},
	}[f])
	return true
}

func (s *sharedService) DecryptCalls() int { return s.srv.Calls().AsymmetricDecrypt }
func (s *sharedService) IsPermissionDenied(err error) bool {
	return errors.Is(err, gcpkms.ErrPermissionDenied)
}
func (s *sharedService) IsUnavailable(err error) bool { return status.Code(err) == codes.Unavailable }

func TestShared(t *testing.T) {
	t.Parallel()
	kmstest.Run(t, func(t *testing.T) kmstest.Service {
		srv := gcpkmstest.Start(t)
		c, err := gcpkms.NewClient(t.Context(), srv.ClientOptions()...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return &sharedService{srv: srv, client: c, versions: make(map[string]int)}
	})
}
