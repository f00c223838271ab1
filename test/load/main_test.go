package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	for q, want := range map[float64]time.Duration{0.5: 50, 0.9: 90, 0.99: 99, 1: 100, 0.001: 1} {
		if got := percentile(d, q); got != want {
			t.Errorf("percentile(%g) = %d, want %d", q, got, want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile of nothing = %d", got)
	}
}

func TestConfigRejects(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-start", "-addr", "127.0.0.1:8443"},
		{"-addr", "127.0.0.1:8443"},
		{"-addr", "10.0.0.1:8443", "-ca", "ca.pem", "-key", "k.pem"},
		{"-addr", "127.0.0.1:8443", "-ca", "ca.pem", "-key", "k.pem", "-scenario", "remote"},
		{"-start", "-scenario", "warm"},
		{"-start", "-d", "1h"},
		{"-start", "-c", "0"},
		{"-start", "-log-level", "trace"},
		{"-start", "extra"},
	} {
		if _, err := parseConfig(args, &bytes.Buffer{}); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

func TestGoBenchTable(t *testing.T) {
	in := `goos: linux
BenchmarkOneValue/rsa-2048.pem-2         	    1000	   1500000 ns/op	         1.10 x-rsa
BenchmarkOneValue/rsa-2048.pem-2         	    1000	   1300000 ns/op	         1.30 x-rsa
BenchmarkOneValue/rsa-2048.pem-2         	    1000	   1400000 ns/op	         1.20 x-rsa
BenchmarkCacheHit-2   	  100000	     25000 ns/op	        25.00 µs/admission
PASS
`
	path := filepath.Join(t.TempDir(), "bench.txt")
	if err := os.WriteFile(path, []byte(in), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := goBenchTable(path, &out); err != nil {
		t.Fatal(err)
	}
	want := `| benchmark | runs | time/op | x-rsa | µs/admission |
| --- | ---: | ---: | ---: | ---: |
| OneValue/rsa-2048.pem | 3 | 1.40 ms | 1.20 |  |
| CacheHit | 1 | 0.03 ms |  | 25.00 |
`
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
}

// binDir holds the webhook binary the tests build; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// webhookBinary builds cmd/webhook once for all the tests.
var webhookBinary = sync.OnceValues(func() (string, error) {
	var err error
	if binDir, err = os.MkdirTemp("", "jwe-webhook-load-test-"); err != nil {
		return "", err
	}
	bin := filepath.Join(binDir, "webhook")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/jwe-webhook/jwe-webhook/cmd/webhook").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build the webhook: %w\n%s", err, out)
	}
	return bin, nil
})

func buildWebhook(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the webhook binary")
	}
	bin, err := webhookBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestStart runs two scenarios briefly at a fixed rate against webhooks it
// starts, the remote one with the fake Cloud KMS, and checks that every
// admission was patched.
func TestStart(t *testing.T) {
	bin := buildWebhook(t)
	logFile := filepath.Join(t.TempDir(), "webhook.log")
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"-start", "-webhook", bin, "-log", logFile, "-scenario", "cache-hit,remote",
		"-d", "500ms", "-rate", "200", "-c", "4", "-latency", "5ms", "-markdown"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"| cache-hit | 1 | RSA-2048, same Secret | rate 200/s ≤4 |", "| remote | 1 | RSA-2048 in fake Cloud KMS | rate 200/s ≤4 |",
		"injected latency 5.00 ms", "Target for cache-hit, ≥ 2000 admissions/s with p99 ≤ 10.0 ms: **not met** at rate 200/s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	log, err := os.ReadFile(logFile)
	if err != nil || !bytes.Contains(log, []byte(`"msg":"admission review"`)) {
		t.Errorf("webhook log %s: %v\n%s", logFile, err, log)
	}
	if strings.Contains(stdout.String()+stderr.String(), `"level"`) {
		t.Errorf("webhook log lines in the output:\n%s%s", stdout.String(), stderr.String())
	}
}

// TestAddr sends a fixed number of fresh Secrets at a given rate to a
// webhook started beforehand, as -addr does with one started elsewhere.
func TestAddr(t *testing.T) {
	bin := buildWebhook(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c, err := parseConfig([]string{"-start", "-webhook", bin}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := newRunner(ctx, c, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	k, err := r.localKey(2048)
	if err != nil {
		t.Fatal(err)
	}
	w, err := r.startWebhook(ctx, []string{"--key-file", k.file})
	if err != nil {
		t.Fatal(err)
	}
	defer w.stop()
	der, err := x509.MarshalPKIXPublicKey(k.pub.Key)
	if err != nil {
		t.Fatal(err)
	}
	pubFile := filepath.Join(t.TempDir(), "pub.pem")
	if err := os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}

	addr := strings.TrimSuffix(strings.TrimPrefix(w.url, "https://"), "/mutate")
	var stdout, stderr bytes.Buffer
	err = run(ctx, []string{"-addr", addr, "-ca", filepath.Join(r.dir, "tls.crt"), "-key", pubFile,
		"-scenario", "cold-rsa2048", "-rate", "100", "-n", "20", "-c", "2", "-d", "5s"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "20 requests in") || !strings.Contains(stdout.String(), "errors 0") {
		t.Fatalf("got\n%s", stdout.String())
	}
}
