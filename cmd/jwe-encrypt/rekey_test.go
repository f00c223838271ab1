package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/local"
)

// A long run reports progress every progressEvery files, and never prints a
// plaintext.
func TestRekeyProgress(t *testing.T) {
	keys, err := local.LoadPublicFile("testdata/rsa-2048.pub.pem")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	const files = progressEvery*2 + 3
	for i := range files {
		value, err := jwe.Encrypt([]byte(fmt.Sprintf("secret-%d", i)), jwe.Scope{Namespace: "hr", Name: "db"}, "", keys...)
		if err != nil {
			t.Fatal(err)
		}
		m := fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: hr\nstringData:\n  password: %s\n", value)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("s%03d.yaml", i)), []byte(m), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var stdout, stderr bytes.Buffer
	c := &cli{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
	if code := c.main(context.Background(), []string{"rekey", "-k", "testdata/rsa-2048.pem", "--add", "testdata/ec-p256.pub.pem", "-i", dir}); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var progress []string
	for l := range strings.Lines(stderr.String()) {
		if strings.Contains(l, "so far") {
			progress = append(progress, strings.TrimSpace(l))
		}
	}
	want := []string{
		fmt.Sprintf("jwe-encrypt: rekey: %d files read, %d values re-encrypted so far", progressEvery, progressEvery),
		fmt.Sprintf("jwe-encrypt: rekey: %d files read, %d values re-encrypted so far", 2*progressEvery, 2*progressEvery),
	}
	if strings.Join(progress, "\n") != strings.Join(want, "\n") {
		t.Errorf("progress lines:\n%s\nwant:\n%s", strings.Join(progress, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(stderr.String(), fmt.Sprintf("re-encrypted %d values in %d files", files, files)) {
		t.Errorf("summary: %s", stderr.String())
	}
	out := stdout.String() + stderr.String()
	for i := range files {
		if strings.Contains(out, fmt.Sprintf("secret-%d", i)) {
			t.Fatalf("a plaintext was printed: %s", out)
		}
	}
	for i := range files {
		data, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("s%03d.yaml", i)))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte("secret-")) {
			t.Fatalf("a plaintext was written to s%03d.yaml", i)
		}
	}
}
