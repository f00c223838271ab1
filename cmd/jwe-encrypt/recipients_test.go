package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/grpc/codes"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/gcpkms/gcpkmstest"
)

// TestGCPPermissionDenied checks that a refusal of Cloud KMS comes with the
// permission to ask for.
func TestGCPPermissionDenied(t *testing.T) {
	srv := gcpkmstest.Start(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	name := gcpCryptoKey + "/cryptoKeyVersions/1"
	if err := srv.AddVersion(name, kmspb.CryptoKeyVersion_RSA_DECRYPT_OAEP_2048_SHA256, key); err != nil {
		t.Fatal(err)
	}
	srv.SetFaults(gcpkmstest.Faults{Code: codes.PermissionDenied})
	env := map[string]string{envGCPKMSEndpoint: srv.Addr(), envGCPKMSInsecure: "1"}
	ks := &keyServices{getenv: func(k string) string { return env[k] }}
	defer ks.close()
	_, err = ks.resolveRecipient(t.Context(), gcpkmsScheme+name)
	h, ok := errors.AsType[*hintError](err)
	if !ok || !strings.Contains(err.Error(), "denied") || !strings.Contains(h.hint, "roles/cloudkms.publicKeyViewer") {
		t.Fatalf("got %v", err)
	}
}

// TestTooLarge checks that a value larger than a Secret may hold is refused.
func TestTooLarge(t *testing.T) {
	var stderr bytes.Buffer
	c := &cli{stdin: strings.NewReader(strings.Repeat("x", jwe.MaxSize+1)), stdout: &bytes.Buffer{}, stderr: &stderr, getenv: func(string) string { return "" }}
	if code := c.main(context.Background(), []string{"-r", "testdata/rsa-2048.pub.pem", "--scope", "cluster"}); code != 1 || !strings.Contains(stderr.String(), "standard input is larger than 1048576 bytes") {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}
