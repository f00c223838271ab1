package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/local"
)

type keyring struct{ kr *kms.Keyring }

func (k keyring) UnwrapKey(ctx context.Context, r jwe.Recipient) ([]byte, error) {
	cek, err := k.kr.Unwrap(ctx, "shop", kms.WrappedKey(r))
	if errors.Is(err, kms.ErrKeyMismatch) {
		return nil, fmt.Errorf("%w: %w", jwe.ErrNoKey, err)
	}
	return cek, err
}

func privateKeys(t *testing.T, names ...string) keyring {
	t.Helper()
	var entries []kms.Entry
	for _, n := range names {
		ks, err := local.LoadFile("testdata/" + n)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, kms.Entry{Decrypter: ks[0], Provider: "local"})
	}
	kr, err := kms.NewKeyring(entries...)
	if err != nil {
		t.Fatal(err)
	}
	return keyring{kr}
}

func TestEncryptDecrypts(t *testing.T) {
	cases := []struct {
		name  string
		args  []string
		in    string
		want  string
		scope jwe.Scope
		ser   jwe.Serialization
	}{
		{"rsa strict", []string{"-r", "testdata/rsa-2048.pub.pem", "--namespace", "shop", "--name", "db"}, "pw\n", "pw", jwe.Scope{Namespace: "shop", Name: "db"}, jwe.Compact},
		{"ec namespace", []string{"--recipient", "testdata/ec-p256.pub.pem", "--namespace", "shop", "--enc", "A128CBC-HS256"}, "pw\r\n", "pw", jwe.Scope{Namespace: "shop"}, jwe.Compact},
		{"two recipients cluster", []string{"-r", "testdata/rsa-2048.pub.pem", "-r", "testdata/ec-p256.pub.pem"}, "a\nb\n\n", "a\nb\n", jwe.Scope{}, jwe.JSON},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if err := run(c.args, strings.NewReader(c.in), &out, &errOut); err != nil {
				t.Fatal(err)
			}
			obj, err := jwe.Parse(out.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if obj.Scope != c.scope || obj.Serialization != c.ser {
				t.Fatalf("scope %v serialization %s", obj.Scope, obj.Serialization)
			}
			for _, key := range []string{"rsa-2048.pem", "ec-p256.pem"} {
				if c.ser == jwe.Compact && !strings.Contains(c.args[1], strings.TrimSuffix(key, ".pem")) {
					continue
				}
				pt, _, err := obj.Decrypt(context.Background(), privateKeys(t, key))
				if err != nil || string(pt) != c.want {
					t.Fatalf("with %s: %q %v", key, pt, err)
				}
			}
		})
	}
}

func TestErrors(t *testing.T) {
	cases := map[string]struct {
		args []string
		in   string
		want string
	}{
		"no recipient":    {nil, "x", "no recipient"},
		"name alone":      {[]string{"-r", "testdata/rsa-2048.pub.pem", "--name", "db"}, "x", "--name needs --namespace"},
		"missing file":    {[]string{"-r", "testdata/nope.pem"}, "x", `key file "testdata/nope.pem"`},
		"private key":     {[]string{"-r", "testdata/rsa-2048.pem"}, "x", "hint"},
		"empty value":     {[]string{"-r", "testdata/rsa-2048.pub.pem"}, "\n", "empty value"},
		"value in a flag": {[]string{"-r", "testdata/rsa-2048.pub.pem", "hunter2"}, "", "unexpected argument"},
		"kid with two":    {[]string{"-r", "testdata/rsa-2048.pub.pem", "-r", "testdata/ec-p256.pub.pem", "--kid", "k"}, "x", "--kid applies to one recipient"},
		"bad enc":         {[]string{"-r", "testdata/rsa-2048.pub.pem", "--enc", "A192GCM"}, "x", "not allowed"},
		"too large":       {[]string{"-r", "testdata/rsa-2048.pub.pem"}, strings.Repeat("x", jwe.MaxSize+1), "larger than"},
	}
	for name, c := range cases {
		var out, errOut bytes.Buffer
		err := run(c.args, strings.NewReader(c.in), &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", name, err, c.want)
		}
		if out.Len() != 0 {
			t.Errorf("%s: wrote output on error", name)
		}
	}
}

func TestPrivateKeyFileIsNotEchoed(t *testing.T) {
	data, err := os.ReadFile("testdata/rsa-2048.pem")
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	err = run([]string{"-r", "testdata/rsa-2048.pem"}, strings.NewReader("x"), &out, &errOut)
	body := strings.Split(string(data), "\n")[1]
	if err == nil || strings.Contains(err.Error(), body[:20]) {
		t.Fatalf("got %v", err)
	}
}

func TestVersionAndHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run([]string{"--version"}, strings.NewReader(""), &out, &errOut); err != nil || !strings.HasPrefix(out.String(), "jwe-encrypt ") {
		t.Fatalf("%q %v", out.String(), err)
	}
	err := run([]string{"-h"}, strings.NewReader(""), &out, &errOut)
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(errOut.String(), "Examples:") {
		t.Fatalf("%v %q", err, errOut.String())
	}
}
