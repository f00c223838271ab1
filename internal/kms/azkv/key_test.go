package azkv_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/azkv"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/azkv/azkvtest"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/kmstest"
)

const version = "0123456789abcdef0123456789abcdef"

// wrap encrypts a fresh 32-byte CEK to k's public key with RSA-OAEP-256 and
// labels it with the key's kid.
func wrap(t *testing.T, k kmstest.PublicKeyer) ([]byte, jwe.Recipient) {
	t.Helper()
	pk, err := k.PublicKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cek := make([]byte, 32)
	rand.Read(cek)
	ek, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pk.Key.(*rsa.PublicKey), cek, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cek, jwe.Recipient{KeyID: pk.KeyID, Algorithm: pk.Algorithm, EncryptedKey: ek}
}

func TestParseKeyURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url  string
		want azkv.KeyURL
	}{
		{"https://hr.vault.azure.net/keys/jwe", azkv.KeyURL{Vault: "https://hr.vault.azure.net", Name: "jwe"}},
		{"https://hr.vault.azure.net/keys/jwe-1/" + version, azkv.KeyURL{Vault: "https://hr.vault.azure.net", Name: "jwe-1", Version: version}},
		{"https://hsm.managedhsm.azure.net:443/keys/k", azkv.KeyURL{Vault: "https://hsm.managedhsm.azure.net:443", Name: "k"}},
	} {
		got, err := azkv.ParseKeyURL(tc.url)
		if err != nil || got != tc.want || got.String() != tc.url {
			t.Errorf("ParseKeyURL(%q) = %+v, %v; want %+v", tc.url, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ url, want string }{
		{"", "is not a key URL"},
		{"http://hr.vault.azure.net/keys/jwe", "is not a key URL"},
		{"hr.vault.azure.net/keys/jwe", "is not a key URL"},
		{"https://hr.vault.azure.net/secrets/jwe", "is not a key URL"},
		{"https://hr.vault.azure.net/keys", "is not a key URL"},
		{"https://hr.vault.azure.net/keys/jwe/" + version + "/x", "is not a key URL"},
		{"https://hr.vault.azure.net/keys/jwe?api-version=7.4", "is not a key URL"},
		{"https://hr.vault.azure.net/keys/j_w_e", `name "j_w_e" is not`},
		{"https://hr.vault.azure.net/keys/jwe/", `version "" is not 32 hexadecimal digits`},
		{"https://hr.vault.azure.net/keys/jwe/latest", `version "latest" is not 32`},
	} {
		if _, err := azkv.ParseKeyURL(tc.url); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseKeyURL(%q) = %v, want an error saying %q", tc.url, err, tc.want)
		}
	}
}

// TestChallenge checks the bearer-challenge flow through the real SDK: the
// first call is challenged and a token obtained with the federated
// service-account token; later calls reuse it; a revoked token is replaced
// after one more challenge.
func TestChallenge(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	k := f.key(t, keyOf(f.addVersion(t, "hr")))
	cek, w := wrap(t, k)
	for range 3 {
		if got, err := k.Unwrap(t.Context(), w); err != nil || !bytes.Equal(got, cek) {
			t.Fatalf("Unwrap: %v", err)
		}
	}
	if got, want := f.srv.Calls(), (azkvtest.Calls{GetKey: 2, UnwrapKey: 3, Challenge: 1, Token: 1}); got != want {
		t.Errorf("calls = %+v, want %+v", got, want)
	}
	f.srv.RevokeTokens()
	if _, err := k.Unwrap(t.Context(), w); err == nil {
		t.Fatal("Unwrap with a revoked token succeeded")
	} else if !errors.Is(err, azkv.ErrPermissionDenied) {
		t.Errorf("revoked token: %v, want ErrPermissionDenied", err)
	}
}

func TestTokenRefused(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	k := f.key(t, keyOf(f.addVersion(t, "hr")))
	f.srv.SetFaults(azkvtest.Faults{RefuseToken: true})
	_, err := k.PublicKey(t.Context())
	if !errors.Is(err, azkv.ErrPermissionDenied) || !strings.Contains(err.Error(), "Microsoft Entra ID refused a token") {
		t.Errorf("token refused: %v, want ErrPermissionDenied", err)
	}
	if strings.Contains(err.Error(), f.srv.FederatedToken) {
		t.Error("the error shows the federated token")
	}
}

// TestTLS checks that the client trusts only the CA it is given.
func TestTLS(t *testing.T) {
	t.Parallel()
	srv := azkvtest.Start(t)
	kid := srv.AddVersion("hr", kmstest.RSAKey(t, 0))
	c, err := azkv.NewClient(t.Context(), azkv.WithAuthorityHost(srv.URL), azkv.WithWorkloadIdentity(srv.ClientID, srv.TenantID, t.TempDir()+"/token"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := c.Key(kid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.PublicKey(t.Context()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("unknown CA: %v, want a certificate error", err)
	}
	if _, err := azkv.NewClient(t.Context(), azkv.WithCAFile(t.TempDir()+"/none.pem")); err == nil || !strings.Contains(err.Error(), "CA file") {
		t.Errorf("missing CA file: %v", err)
	}
}

// TestOtherKeysNotContacted checks that a kid of another vault, key or
// version is a mismatch found without a call.
func TestOtherKeysNotContacted(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	v1 := f.addVersion(t, "hr")
	v2 := f.addVersion(t, "hr")
	family, pinned := f.key(t, keyOf(v1)), f.key(t, v1)
	for _, tc := range []struct {
		k     *azkv.Key
		kid   string
		match bool
	}{
		{family, v1, true},
		{family, v2, true},
		{pinned, v1, true},
		{pinned, v2, false},
		{family, strings.Replace(v1, "/keys/hr/", "/keys/hr2/", 1), false},
		{family, "https://evil.vault.azure.net/keys/hr/" + version, false},
		{family, strings.Replace(v1, "https://", "http://", 1), false},
		{family, keyOf(v1) + "/" + strings.ToUpper(version[:31]), false},
	} {
		if got := tc.k.MatchKeyID(tc.kid); got != tc.match {
			t.Errorf("Key(%q).MatchKeyID(%q) = %v, want %v", tc.k.KeyID(), tc.kid, got, tc.match)
		}
		if tc.match {
			continue
		}
		_, err := tc.k.Unwrap(t.Context(), jwe.Recipient{KeyID: tc.kid, Algorithm: "RSA-OAEP-256", EncryptedKey: []byte("x")})
		if !errors.Is(err, jwe.ErrKeyMismatch) {
			t.Errorf("Unwrap with kid %q: %v, want ErrKeyMismatch", tc.kid, err)
		}
	}
	// The key's own URL names no version: the keyring finds the key by it,
	// but it opens nothing.
	if _, err := family.Unwrap(t.Context(), jwe.Recipient{KeyID: family.KeyID(), Algorithm: "RSA-OAEP-256", EncryptedKey: []byte("x")}); !errors.Is(err, jwe.ErrKeyMismatch) {
		t.Errorf("Unwrap with the key's URL as kid: %v, want ErrKeyMismatch", err)
	}
	if c := f.srv.Calls(); c != (azkvtest.Calls{}) {
		t.Errorf("calls = %+v, want none", c)
	}
}

// TestPublicKeyNewest checks that a key's public key is its newest version's,
// and a version's its own.
func TestPublicKeyNewest(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	v1 := f.addVersion(t, "hr")
	family := f.key(t, keyOf(v1))
	v2 := f.addVersion(t, "hr")
	for _, tc := range []struct {
		k    *azkv.Key
		want string
	}{{family, v2}, {f.key(t, v1), v1}} {
		pk, err := tc.k.PublicKey(t.Context())
		if err != nil || pk.KeyID != tc.want || pk.Algorithm != "RSA-OAEP-256" {
			t.Errorf("PublicKey of %q = %q %q, %v; want %q RSA-OAEP-256", tc.k.KeyID(), pk.KeyID, pk.Algorithm, err, tc.want)
		}
	}
	if err := f.srv.SetEnabled(v1, false); err != nil {
		t.Fatal(err)
	}
	v3 := f.addVersion(t, "hr")
	pks, err := family.PublicKeys(t.Context())
	if err != nil || len(pks) != 2 || pks[0].KeyID != v2 || pks[1].KeyID != v3 {
		t.Errorf("PublicKeys = %v, %v; want the enabled versions %q and %q", pks, err, v2, v3)
	}
	sign := f.addVersion(t, "sign", "sign", "verify")
	if _, err := f.key(t, sign).PublicKey(t.Context()); err == nil || !strings.Contains(err.Error(), "not an RSA key that may unwrapKey") {
		t.Errorf("signing key: %v", err)
	}
	if _, err := f.key(t, keyOf(v1)+"-missing").PublicKey(t.Context()); err == nil || !strings.Contains(err.Error(), "HTTP 404 KeyNotFound") || !errors.Is(err, kms.ErrKeyNotFound) {
		t.Errorf("missing key: %v, want ErrKeyNotFound", err)
	}
}

// TestUnwrapService checks what Unwrap says when the vault refuses or fails,
// and how often it calls.
func TestUnwrapService(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		faults  azkvtest.Faults
		disable bool
		want    string
		is      error
		unwraps int // after the priming one
	}{
		{name: "forbidden", faults: azkvtest.Faults{Status: http.StatusForbidden},
			want: "permission denied (check the webhook's identity and its Key Vault role or access policy): HTTP 403 Forbidden: Caller is not authorized", is: azkv.ErrPermissionDenied, unwraps: 1},
		{name: "throttled, retried twice", faults: azkvtest.Faults{Status: http.StatusTooManyRequests},
			want: "HTTP 429 Throttled", is: azkv.ErrUnavailable, unwraps: 3},
		{name: "unavailable, retried twice", faults: azkvtest.Faults{Status: http.StatusServiceUnavailable},
			want: "HTTP 503 ServiceUnavailable", is: azkv.ErrUnavailable, unwraps: 3},
		{name: "disabled", disable: true, want: "Operation unwrapKey is not allowed on a disabled key.", is: azkv.ErrPermissionDenied, unwraps: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			kid := f.addVersion(t, "hr")
			k := f.key(t, keyOf(kid))
			cek, w := wrap(t, k)
			if _, err := k.Unwrap(t.Context(), w); err != nil {
				t.Fatal(err)
			}
			f.srv.SetFaults(tc.faults)
			if tc.disable {
				if err := f.srv.SetEnabled(kid, false); err != nil {
					t.Fatal(err)
				}
			}
			_, err := k.Unwrap(t.Context(), w)
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, jwe.ErrKeyMismatch) || !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want %v saying %q", err, tc.is, tc.want)
			}
			if got := f.srv.Calls().UnwrapKey - 1; got != tc.unwraps {
				t.Errorf("%d unwrapKey calls, want %d", got, tc.unwraps)
			}
			for _, s := range [][]byte{cek, w.EncryptedKey} {
				if bytes.Contains([]byte(err.Error()), s) {
					t.Error("the error shows a secret")
				}
			}
		})
	}
}

func TestServerDown(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	k := f.key(t, keyOf(f.addVersion(t, "hr")))
	_, w := wrap(t, k)
	f.srv.Close()
	_, err := k.Unwrap(t.Context(), w)
	if !errors.Is(err, azkv.ErrUnavailable) || errors.Is(err, jwe.ErrKeyMismatch) {
		t.Errorf("server down: %v, want ErrUnavailable", err)
	}
	if err := f.srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Unwrap(t.Context(), w); err != nil {
		t.Errorf("after a restart: %v", err)
	}
}

// TestHSMKey checks that an HSM-protected RSA key (kty RSA-HSM) serves and
// unwraps like a software one.
func TestHSMKey(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	kid := f.addVersion(t, "hsm")
	if err := f.srv.SetHSM(kid); err != nil {
		t.Fatal(err)
	}
	k := f.key(t, keyOf(kid))
	cek, w := wrap(t, k)
	if w.KeyID != kid {
		t.Fatalf("PublicKey kid %q, want %q", w.KeyID, kid)
	}
	if got, err := k.Unwrap(t.Context(), w); err != nil || !bytes.Equal(got, cek) {
		t.Fatalf("Unwrap: %v", err)
	}
}
