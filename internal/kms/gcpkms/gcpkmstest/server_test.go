package gcpkmstest_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"hash/crc32"
	"slices"
	"strings"
	"testing"
	"time"

	cloudkms "cloud.google.com/go/kms/apiv1"
	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/jwe-webhook/jwe-webhook/internal/kms/gcpkms/gcpkmstest"
)

const key = "projects/p/locations/global/keyRings/r/cryptoKeys/k"

// start returns a server whose crypto key k has versions 1 to 3 (all the
// same RSA-2048 key) and a Cloud KMS client talking to it.
func start(t *testing.T) (*gcpkmstest.Server, *cloudkms.KeyManagementClient, *rsa.PrivateKey) {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s := gcpkmstest.Start(t)
	for _, n := range []string{"1", "2", "3"} {
		if err := s.AddVersion(key+"/cryptoKeyVersions/"+n, kmspb.CryptoKeyVersion_RSA_DECRYPT_OAEP_2048_SHA256, priv); err != nil {
			t.Fatal(err)
		}
	}
	c, err := cloudkms.NewKeyManagementClient(t.Context(), s.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return s, c, priv
}

func crc32c(b []byte) int64 {
	return int64(crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

func TestAsymmetricDecrypt(t *testing.T) {
	t.Parallel()
	s, c, priv := start(t)
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &priv.PublicKey, []byte("cek"), nil)
	if err != nil {
		t.Fatal(err)
	}
	v1 := key + "/cryptoKeyVersions/1"
	if err := s.SetState(key+"/cryptoKeyVersions/3", kmspb.CryptoKeyVersion_DISABLED); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		req      *kmspb.AsymmetricDecryptRequest
		code     codes.Code
		verified bool
	}{
		{"checksum", &kmspb.AsymmetricDecryptRequest{Name: v1, Ciphertext: ct, CiphertextCrc32C: wrapperspb.Int64(crc32c(ct))}, codes.OK, true},
		{"no checksum", &kmspb.AsymmetricDecryptRequest{Name: v1, Ciphertext: ct}, codes.OK, false},
		{"wrong checksum", &kmspb.AsymmetricDecryptRequest{Name: v1, Ciphertext: ct, CiphertextCrc32C: wrapperspb.Int64(crc32c(ct) + 1)}, codes.InvalidArgument, false},
		{"wrong ciphertext", &kmspb.AsymmetricDecryptRequest{Name: v1, Ciphertext: ct[1:]}, codes.InvalidArgument, false},
		{"disabled", &kmspb.AsymmetricDecryptRequest{Name: key + "/cryptoKeyVersions/3", Ciphertext: ct}, codes.FailedPrecondition, false},
		{"unknown", &kmspb.AsymmetricDecryptRequest{Name: key + "/cryptoKeyVersions/4", Ciphertext: ct}, codes.NotFound, false},
		{"crypto key", &kmspb.AsymmetricDecryptRequest{Name: key, Ciphertext: ct}, codes.InvalidArgument, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := c.AsymmetricDecrypt(t.Context(), tc.req)
			if status.Code(err) != tc.code {
				t.Fatalf("err = %v, want code %v", err, tc.code)
			}
			if err != nil {
				return
			}
			if string(resp.GetPlaintext()) != "cek" || resp.GetPlaintextCrc32C().GetValue() != crc32c([]byte("cek")) || resp.GetVerifiedCiphertextCrc32C() != tc.verified {
				t.Errorf("response = %v", resp)
			}
		})
	}
	if got := s.Calls(); got != (gcpkmstest.Calls{AsymmetricDecrypt: 7}) {
		t.Errorf("calls = %+v", got)
	}
}

func TestListCryptoKeyVersions(t *testing.T) {
	t.Parallel()
	s, c, _ := start(t)
	if err := s.SetState(key+"/cryptoKeyVersions/2", kmspb.CryptoKeyVersion_DISABLED); err != nil {
		t.Fatal(err)
	}
	list := func(parent, filter string) ([]string, error) {
		var names []string
		it := c.ListCryptoKeyVersions(t.Context(), &kmspb.ListCryptoKeyVersionsRequest{Parent: parent, Filter: filter})
		for {
			v, err := it.Next()
			if errors.Is(err, iterator.Done) {
				return names, nil
			}
			if err != nil {
				return nil, err
			}
			names = append(names, strings.TrimPrefix(v.GetName(), key+"/cryptoKeyVersions/"))
		}
	}
	if got, err := list(key, ""); err != nil || !slices.Equal(got, []string{"1", "2", "3"}) {
		t.Errorf("all versions: %q, %v", got, err)
	}
	if got, err := list(key, "state = ENABLED"); err != nil || !slices.Equal(got, []string{"1", "3"}) {
		t.Errorf("enabled versions: %q, %v", got, err)
	}
	if n := s.Calls().ListCryptoKeyVersions; n != 3 {
		t.Errorf("%d calls for two lists of 3 and 2 versions, want 3 (pages of 2)", n)
	}
	if _, err := list(key, "algorithm=x"); status.Code(err) != codes.InvalidArgument {
		t.Errorf("unsupported filter: %v", err)
	}
	if _, err := list(key+"2", ""); status.Code(err) != codes.NotFound {
		t.Errorf("unknown key: %v", err)
	}
}

func TestAddVersion(t *testing.T) {
	t.Parallel()
	s, _, priv := start(t)
	for _, tc := range []struct {
		name string
		alg  kmspb.CryptoKeyVersion_CryptoKeyVersionAlgorithm
		want string
	}{
		{key + "/cryptoKeyVersions/1", kmspb.CryptoKeyVersion_RSA_DECRYPT_OAEP_2048_SHA256, "already exists"},
		{key, kmspb.CryptoKeyVersion_RSA_DECRYPT_OAEP_2048_SHA256, "not a key version name"},
		{key + "/cryptoKeyVersions/9", kmspb.CryptoKeyVersion_RSA_DECRYPT_OAEP_4096_SHA256, "takes a 4096-bit key"},
		{key + "/cryptoKeyVersions/9", kmspb.CryptoKeyVersion_EC_SIGN_P256_SHA256, "not an RSA algorithm"},
	} {
		if err := s.AddVersion(tc.name, tc.alg, priv); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("AddVersion(%q, %s) = %v, want an error saying %q", tc.name, tc.alg, err, tc.want)
		}
	}
}

// TestCloseEndsDelayedCalls checks that Close does not wait out a Delay.
func TestCloseEndsDelayedCalls(t *testing.T) {
	t.Parallel()
	const hold = 10 * time.Second
	s, c, _ := start(t)
	s.SetFaults(gcpkmstest.Faults{Delay: hold})
	called := make(chan struct{})
	go func() {
		defer close(called)
		_, _ = c.GetPublicKey(t.Context(), &kmspb.GetPublicKeyRequest{Name: key + "/cryptoKeyVersions/1"})
	}()
	for s.Calls().GetPublicKey == 0 {
		select {
		case <-called:
			t.Fatal("GetPublicKey returned before the server held it")
		case <-time.After(time.Millisecond):
		}
	}
	closed := make(chan struct{})
	go func() {
		s.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(hold):
		t.Fatal("Close waited for the delayed call")
	}
}
