package awskms_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/awskms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/awskms/awskmstest"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/kmstest"
)

// wrap encrypts a fresh 32-byte CEK to pub with RSA-OAEP-256 and labels it
// kid.
func wrap(t *testing.T, pub *rsa.PublicKey, kid string) ([]byte, jwe.Recipient) {
	t.Helper()
	cek := make([]byte, 32)
	rand.Read(cek)
	ek, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, cek, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cek, jwe.Recipient{KeyID: kid, Algorithm: "RSA-OAEP-256", EncryptedKey: ek}
}

func rsaPublic(t *testing.T, pk jwe.PublicKey) *rsa.PublicKey {
	t.Helper()
	pub, ok := pk.Key.(*rsa.PublicKey)
	if !ok {
		t.Fatalf("public key is %T", pk.Key)
	}
	return pub
}

func TestKeyARN(t *testing.T) {
	t.Parallel()
	c, err := awskms.NewClient(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, arn := range []string{
		"arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		"arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab",
	} {
		k, err := c.Key(arn)
		if err != nil || k.KeyID() != arn {
			t.Errorf("Key(%q) = %v, %v", arn, k, err)
		}
	}
	for _, tc := range []struct{ arn, want string }{
		{"", "is not a key ARN"},
		{"1234abcd-12ab-34cd-56ef-1234567890ab", "is not a key ARN"},
		{"alias/hr", "is not a key ARN"},
		{"arn:aws:kms:eu-west-1:111122223333:alias/hr", "is an alias ARN; name the key ARN it points to"},
		{"arn:aws:s3:eu-west-1:111122223333:key/k", "is not a key ARN"},
		{"arn:aws:kms:eu-west-1:111122223333:keys/k", "is not a key ARN"},
		{"arn:aws:kms:EU:111122223333:key/k", "partition and region"},
		{"arn:aws:kms::111122223333:key/k", "partition and region"},
		{"arn:aws:kms:eu-west-1:1111:key/k", `account "1111" is not 12 digits`},
		{"arn:aws:kms:eu-west-1:111122223333:key/", `key ID "" is empty`},
		{"arn:aws:kms:eu-west-1:111122223333:key/a/b", `key ID "a/b" is empty or has characters`},
	} {
		if _, err := c.Key(tc.arn); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Key(%q) = %v, want an error saying %q", tc.arn, err, tc.want)
		}
	}
}

func TestNewClientEndpoint(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ endpoint, want string }{
		{"kms.eu-west-1.amazonaws.com", "is not an http(s) URL"},
		{"http://kms.internal:443", "plain http is allowed to loopback only"},
	} {
		if _, err := awskms.NewClient(t.Context(), awskms.WithEndpoint(tc.endpoint)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("endpoint %q: %v, want %q", tc.endpoint, err, tc.want)
		}
	}
	if _, err := awskms.NewClient(t.Context(), awskms.WithCAFile(t.TempDir()+"/none.pem")); err == nil || !strings.Contains(err.Error(), "CA file") {
		t.Errorf("missing CA file: %v", err)
	}
}

// TestSignature checks that the fake checks SigV4 signatures, and what the
// provider makes of a refused signature.
func TestSignature(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	arn := f.addKey(t, "ENCRYPT_DECRYPT")
	for _, tc := range []struct{ name, id, secret, want string }{
		{"wrong secret", f.srv.AccessKeyID, "wrong", "InvalidSignatureException"},
		{"unknown access key", "AKIAUNKNOWN", f.srv.SecretAccessKey, "UnrecognizedClientException"},
	} {
		c, err := awskms.NewClient(t.Context(), awskms.WithEndpoint(f.srv.URL), awskms.WithStaticCredentials(tc.id, tc.secret))
		if err != nil {
			t.Fatal(err)
		}
		k, err := c.Key(arn)
		if err != nil {
			t.Fatal(err)
		}
		_, err = k.PublicKey(t.Context())
		if !errors.Is(err, awskms.ErrPermissionDenied) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrPermissionDenied from %s", tc.name, err, tc.want)
		}
		if strings.Contains(err.Error(), f.srv.SecretAccessKey) {
			t.Errorf("%s: error shows the secret key", tc.name)
		}
	}
}

// TestRegionFromARN checks that a call goes to the key ARN's region, not the
// client's default: the fake finds a key only in its own region.
func TestRegionFromARN(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	arn := f.addKey(t, "ENCRYPT_DECRYPT")
	c, err := awskms.NewClient(t.Context(), append(f.srv.Options(), awskms.WithRegion("us-east-1"))...)
	if err != nil {
		t.Fatal(err)
	}
	k, err := c.Key(arn)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := k.PublicKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cek, w := wrap(t, rsaPublic(t, pk), arn)
	got, err := k.Unwrap(t.Context(), w)
	if err != nil || !bytes.Equal(got, cek) {
		t.Fatalf("Unwrap: %v", err)
	}
	// An alias name is looked up in the default region, where there is none.
	if err := f.srv.SetAlias("alias/hr", arn); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PublicKey(t.Context(), "alias/hr"); err == nil || !strings.Contains(err.Error(), "NotFoundException") {
		t.Errorf("alias in another region: %v, want NotFoundException", err)
	}
}

// TestPublicKeyResolvesAliases checks that the custodian's names (alias
// name, alias ARN, key ID) give the key ARN as kid, and follow the alias
// when it moves.
func TestPublicKeyResolvesAliases(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	first, second := f.addKey(t, "ENCRYPT_DECRYPT"), f.addKey(t, "ENCRYPT_DECRYPT")
	if err := f.srv.SetAlias("alias/hr", first); err != nil {
		t.Fatal(err)
	}
	c, err := awskms.NewClient(t.Context(), append(f.srv.Options(), awskms.WithRegion("eu-west-1"))...)
	if err != nil {
		t.Fatal(err)
	}
	_, id, _ := strings.Cut(first, ":key/")
	for _, ref := range []string{first, "arn:aws:kms:eu-west-1:111122223333:alias/hr", "alias/hr", id} {
		pk, err := c.PublicKey(t.Context(), ref)
		if err != nil || pk.KeyID != first || pk.Algorithm != "RSA-OAEP-256" {
			t.Errorf("PublicKey(%q) = %q %q, %v; want %q RSA-OAEP-256", ref, pk.KeyID, pk.Algorithm, err, first)
		}
	}
	if err := f.srv.SetAlias("alias/hr", second); err != nil {
		t.Fatal(err)
	}
	if pk, err := c.PublicKey(t.Context(), "alias/hr"); err != nil || pk.KeyID != second {
		t.Errorf("after moving the alias: %q, %v; want %q", pk.KeyID, err, second)
	}
	if _, err := c.PublicKey(t.Context(), "arn:aws:s3:::bucket"); err == nil {
		t.Error("PublicKey of an S3 ARN succeeded")
	}
}

func TestPublicKeyRefused(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	sign := f.addKey(t, "SIGN_VERIFY")
	_, err := f.key(t, sign).PublicKey(t.Context())
	if err == nil || !strings.Contains(err.Error(), "is RSA_2048 with usage SIGN_VERIFY, not RSA_2048/3072/4096 with usage ENCRYPT_DECRYPT") {
		t.Errorf("signing key: %v", err)
	}
	_, err = f.key(t, "arn:aws:kms:eu-west-1:111122223333:key/missing").PublicKey(t.Context())
	if err == nil || !strings.Contains(err.Error(), "NotFoundException: Key 'arn:aws:kms:eu-west-1:111122223333:key/missing' does not exist") || !errors.Is(err, kms.ErrKeyNotFound) {
		t.Errorf("missing key: %v, want ErrKeyNotFound", err)
	}
}

// TestUnwrapService checks what Unwrap says when AWS KMS refuses or fails,
// and how often it calls.
func TestUnwrapService(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		faults  awskmstest.Faults
		disable bool
		want    string
		is      error
		decrypt int // calls, after the priming one
	}{
		{name: "access denied", faults: awskmstest.Faults{Error: "AccessDeniedException"},
			want: "permission denied (check the webhook's IAM role and the key policy): AccessDeniedException: User: ", is: awskms.ErrPermissionDenied, decrypt: 1},
		{name: "internal error, retried twice", faults: awskmstest.Faults{Error: "KMSInternalException"},
			want: "KMSInternalException: An internal error occurred.", is: awskms.ErrUnavailable, decrypt: 3},
		{name: "throttled, retried twice", faults: awskmstest.Faults{Error: "ThrottlingException"},
			want: "ThrottlingException: Rate exceeded", is: awskms.ErrUnavailable, decrypt: 3},
		{name: "disabled", disable: true, want: " is disabled. (is the key enabled?)", decrypt: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			arn := f.addKey(t, "ENCRYPT_DECRYPT")
			k := f.key(t, arn)
			cek, w := wrap(t, rsaPublic(t, mustPublicKey(t, k)), arn)
			if _, err := k.Unwrap(t.Context(), w); err != nil {
				t.Fatal(err)
			}
			f.srv.SetFaults(tc.faults)
			if tc.disable {
				if err := f.srv.SetEnabled(arn, false); err != nil {
					t.Fatal(err)
				}
			}
			_, err := k.Unwrap(t.Context(), w)
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, jwe.ErrKeyMismatch) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want it to wrap %v", err, tc.is)
			}
			if got := f.srv.Calls().Decrypt - 1; got != tc.decrypt {
				t.Errorf("%d decrypt calls, want %d", got, tc.decrypt)
			}
			for _, s := range [][]byte{cek, w.EncryptedKey} {
				if bytes.Contains([]byte(err.Error()), s) {
					t.Error("the error shows a secret")
				}
			}
		})
	}
}

func mustPublicKey(t *testing.T, k kmstest.PublicKeyer) jwe.PublicKey {
	t.Helper()
	pk, err := k.PublicKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

// TestPublicKeyCached checks that the key's algorithms are read once however
// many values it unwraps.
func TestPublicKeyCached(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	arn := f.addKey(t, "ENCRYPT_DECRYPT")
	k := f.key(t, arn)
	pub := rsaPublic(t, mustPublicKey(t, k))
	for range 5 {
		cek, w := wrap(t, pub, arn)
		if got, err := k.Unwrap(t.Context(), w); err != nil || !bytes.Equal(got, cek) {
			t.Fatalf("Unwrap: %v", err)
		}
	}
	if got, want := f.srv.Calls(), (awskmstest.Calls{GetPublicKey: 1, Decrypt: 5}); got != want {
		t.Errorf("calls = %+v, want %+v", got, want)
	}
}

// TestServerDown checks that a closed endpoint is unavailable, not a
// mismatch.
func TestServerDown(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	arn := f.addKey(t, "ENCRYPT_DECRYPT")
	k := f.key(t, arn)
	_, w := wrap(t, rsaPublic(t, mustPublicKey(t, k)), arn)
	f.srv.Close()
	_, err := k.Unwrap(t.Context(), w)
	if !errors.Is(err, awskms.ErrUnavailable) || errors.Is(err, jwe.ErrKeyMismatch) || !strings.Contains(err.Error(), "aws kms: decrypt with") {
		t.Errorf("server down: %v, want ErrUnavailable", err)
	}
	if err := f.srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Unwrap(t.Context(), w); err != nil {
		t.Errorf("after a restart: %v", err)
	}
}
