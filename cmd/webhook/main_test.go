package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/jwe-webhook/jwe-webhook/internal/admission"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

var required = []string{"--tls-cert-file", "c.crt", "--tls-key-file", "c.key", "--key-file", "k.pem"}

func TestParseConfigPrecedence(t *testing.T) {
	vars := map[string]string{
		"JWE_WEBHOOK_LISTEN":          ":9443",
		"JWE_WEBHOOK_REQUEST_TIMEOUT": "5s",
		"JWE_WEBHOOK_LOG_LEVEL":       "debug",
		"JWE_WEBHOOK_KEY_FILE":        "env1.pem,env2.jwk",
	}
	c, err := parseConfig(append([]string{"--listen", ":7443"}, required[:4]...), env(vars), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.listen != ":7443" {
		t.Errorf("listen = %q, want the flag's :7443 over the environment's", c.listen)
	}
	if c.requestTimeout != 5*time.Second || c.logLevel != zapcore.DebugLevel {
		t.Errorf("request timeout %v, log level %v; want 5s and debug from the environment", c.requestTimeout, c.logLevel)
	}
	if want := []string{"env1.pem", "env2.jwk"}; !reflect.DeepEqual(c.keyFiles, want) {
		t.Errorf("key files %q, want %q", c.keyFiles, want)
	}
	if c.shutdownTimeout != 20*time.Second || c.maxRequestBytes != 8<<20 || c.concurrency != 32 {
		t.Errorf("defaults: shutdown %v, max bytes %d, concurrency %d", c.shutdownTimeout, c.maxRequestBytes, c.concurrency)
	}
	if want := (admission.Limits{MaxValues: 256, MaxRecipients: 16, MaxJWEBytes: 1 << 20, MaxReviews: 64}); c.limits != want {
		t.Errorf("default limits %+v, want %+v", c.limits, want)
	}
	if c.maxKeyCalls != 64 || c.negativeCacheTTL != 5*time.Second {
		t.Errorf("defaults: max key calls %d, negative cache TTL %v", c.maxKeyCalls, c.negativeCacheTTL)
	}

	c, err = parseConfig(append(required, "--key-file", "b.jwk"), env(vars), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"k.pem", "b.jwk"}; !reflect.DeepEqual(c.keyFiles, want) {
		t.Errorf("key files %q, want the flags' %q", c.keyFiles, want)
	}
}

func TestRunRejectsConfig(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no flags", nil, nil, "--tls-cert-file and --tls-key-file are required"},
		{"no key", []string{"--tls-cert-file", "c.crt", "--key-file", "k.pem"}, nil, "--tls-key-file are required"},
		{"no key file", required[:4], nil, "at least one --key-file"},
		{"bad level", append(required, "--log-level", "fatal"), nil, "want debug, info, warn or error"},
		{"bad env", required, map[string]string{"JWE_WEBHOOK_CONCURRENCY": "many"}, `invalid value "many" for $JWE_WEBHOOK_CONCURRENCY`},
		{"zero concurrency", append(required, "--concurrency", "0"), nil, "--concurrency must be at least 1"},
		{"zero values per secret", append(required, "--max-values-per-secret", "0"), nil, "--max-values-per-secret, --max-jwe-bytes and --max-reviews-in-flight must be at least 1"},
		{"zero reviews in flight", required, map[string]string{"JWE_WEBHOOK_MAX_REVIEWS_IN_FLIGHT": "0"}, "--max-reviews-in-flight must be at least 1"},
		{"too many recipients", append(required, "--max-recipients", "33"), nil, "--max-recipients must be between 1 and 32"},
		{"unknown flag", []string{"--nope"}, nil, "flag provided but not defined"},
		{"argument", append(required, "extra"), nil, `unexpected argument "extra"`},
		{"missing key file", required, nil, `key file "k.pem"`},
		{"both key sources", append(required, "--key-config", "keys.yaml"), nil, "give --key-config or --key-file, not both"},
		{"missing key config", slices.Concat(required[:4], []string{"--key-config", "nope.yaml"}), nil, "key configuration: open nope.yaml"},
		{"key timeout too long", append(required, "--key-timeout", "9s"), nil, "--key-timeout must be positive and below --request-timeout (8s)"},
		{"no key calls", append(required, "--max-key-calls", "0"), nil, "--max-key-calls must be at least 1"},
		{"negative cache ttl", append(required, "--negative-cache-ttl", "-1s"), nil, "--negative-cache-ttl must be 0 (off) or positive"},
		{"cache without ttl", append(required, "--cache-ttl", "0s"), nil, "--cache-size must be 0 (off) or more, with a positive --cache-ttl"},
		{"names without client CA", required, map[string]string{"JWE_WEBHOOK_CLIENT_ALLOWED_NAMES": "kube-apiserver"}, "--client-allowed-names needs --client-ca-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(t.Context(), tt.args, env(tt.env), &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestRunHelp(t *testing.T) {
	var stderr bytes.Buffer
	if err := run(t.Context(), []string{"--help"}, env(nil), &stderr); err != nil {
		t.Errorf("run --help: %v", err)
	}
	if !strings.Contains(stderr.String(), "JWE_WEBHOOK_TLS_CERT_FILE") {
		t.Errorf("usage does not name the environment variables:\n%s", stderr.String())
	}
}

func TestRunVersion(t *testing.T) {
	// What make build stamps with -ldflags "-X main.version=…".
	stamped := version
	version = "v1.2.3-4-gabcdef0"
	t.Cleanup(func() { version = stamped })
	var stderr bytes.Buffer
	// --version answers before the required flags are checked.
	if err := run(t.Context(), []string{"--version"}, env(nil), &stderr); err != nil {
		t.Fatalf("run --version: %v", err)
	}
	if got, want := stderr.String(), "webhook v1.2.3-4-gabcdef0\n"; got != want {
		t.Errorf("run --version printed %q, want %q", got, want)
	}
}

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// servingCert writes an EC key and a self-signed certificate for it to dir.
// The key also serves as a local JWE key.
func servingCert(t *testing.T, dir string) (certFile, keyFile string, key *ecdsa.PrivateKey, notAfter time.Time) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "jwe-webhook"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
	}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "key.pem")
	for path, data := range map[string][]byte{
		certFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER}),
		keyFile:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile, key, tmpl.NotAfter
}

// hang is how long a test waits for the webhook to start or stop before it
// calls it a hang: generous, so that a loaded machine (CI runs -race on 2
// shared cores) never fails a test, since tests never fail on wall time.
const hang = time.Minute

// running is the webhook started by startRun.
type running struct {
	metricsAddr string
	stderr      *syncBuffer
	cancel      context.CancelFunc
	done        chan error
}

// startRun runs the webhook with args and env until the test ends, and
// waits until it serves.
func startRun(t *testing.T, args []string, vars map[string]string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	r := &running{stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	t.Cleanup(cancel)
	go func() {
		r.done <- run(ctx, append([]string{"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"}, args...), env(vars), r.stderr)
	}()
	deadline := time.NewTimer(hang)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	metricsAddr := regexp.MustCompile(`"msg":"serving probes and metrics","addr":"([^"]+)"`)
	for {
		select {
		case err := <-r.done:
			t.Fatalf("run returned %v before serving; log:\n%s", err, r.stderr.String())
		case <-deadline.C:
			t.Fatalf("not serving within %s; log:\n%s", hang, r.stderr.String())
		case <-tick.C:
		}
		if addr := metricsAddr.FindStringSubmatch(r.stderr.String()); addr != nil {
			r.metricsAddr = addr[1]
			return r
		}
	}
}

// get returns the status and body of path on the metrics port.
func (r *running) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + r.metricsAddr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestRunServes starts the webhook with an EC key that serves both as TLS key
// and as local JWE key, and stops it by cancelling the context.
func TestRunServes(t *testing.T) {
	certFile, keyFile, key, notAfter := servingCert(t, t.TempDir())
	r := startRun(t, []string{"--tls-cert-file", certFile, "--tls-key-file", keyFile}, map[string]string{"JWE_WEBHOOK_KEY_FILE": keyFile})
	for path, want := range map[string]string{
		"/readyz":  "ok",
		"/metrics": `jwe_webhook_serving_certificate_expiry_timestamp_seconds ` + strconv.FormatFloat(float64(notAfter.Unix()), 'g', -1, 64),
	} {
		if code, body := r.get(t, path); code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d, want 200 with %q:\n%s", path, code, want, body)
		}
	}
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("run after cancellation: %v", err)
		}
	case <-time.After(hang):
		t.Fatalf("run did not return within %s of cancellation", hang)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	stderr := r.stderr

	log := stderr.String()
	if !strings.Contains(log, `"kids":["`) {
		t.Errorf("start line does not list the key IDs:\n%s", log)
	}
	if !strings.Contains(log, "any client that reaches the port can use the webhook to decrypt: set --client-ca-file") {
		t.Errorf("no warning that clients are not authenticated:\n%s", log)
	}
	pemBody := base64.StdEncoding.EncodeToString(keyDER)[:40]
	jwkD := base64.RawURLEncoding.EncodeToString(key.D.Bytes())
	if strings.Contains(log, "PRIVATE KEY") || strings.Contains(log, pemBody) || strings.Contains(log, jwkD) {
		t.Errorf("log holds key material:\n%s", log)
	}
}

// TestRunBrokenKeyConfig: a key configuration broken while the webhook runs
// leaves it ready with the last good keys, reported by /readyz, a metric and
// a log line; the file fixed, the report goes away.
func TestRunBrokenKeyConfig(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _, _ := servingCert(t, dir)
	good := fmt.Sprintf("keys:\n  - provider: local\n    local: {file: %s}\n", keyFile)
	config := filepath.Join(dir, "keys.yaml")
	if err := os.WriteFile(config, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startRun(t, []string{"--tls-cert-file", certFile, "--tls-key-file", keyFile,
		"--key-config", config, "--key-config-reload-interval", "10ms"}, nil)
	waitMetric := func(want string) {
		t.Helper()
		deadline := time.Now().Add(hang)
		for {
			_, body := r.get(t, "/metrics")
			if strings.Contains(body, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %q within %s:\n%s", want, hang, body)
			}
			time.Sleep(10 * time.Millisecond) // polling the metric, not waiting a fixed time
		}
	}
	waitMetric("jwe_webhook_key_config_last_reload_success 1\n")

	if err := os.WriteFile(config, []byte("keys: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitMetric("jwe_webhook_key_config_last_reload_success 0\n")
	code, body := r.get(t, "/readyz")
	if code != http.StatusOK || !strings.Contains(body, "key configuration "+config+" does not build") {
		t.Errorf("/readyz with a broken file: %d %q, want 200 naming the file", code, body)
	}
	if log := r.stderr.String(); !strings.Contains(log, "key configuration not reloaded; the previous keys stay in use") {
		t.Errorf("no log line for the broken file:\n%s", log)
	}

	if err := os.WriteFile(config, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	waitMetric("jwe_webhook_key_config_last_reload_success 1\n")
	if code, body := r.get(t, "/readyz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/readyz with the file fixed: %d %q", code, body)
	}
}
