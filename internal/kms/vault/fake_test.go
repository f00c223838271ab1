package vault_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/vault"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/vault/vaulttest"
)

// startFake starts the stand-in Vault, closed after the test.
func startFake(t *testing.T, opts vaulttest.Options) *vaulttest.Server {
	t.Helper()
	s := vaulttest.New(opts)
	t.Cleanup(s.Close)
	return s
}

// fakeKey starts the stand-in with an rsa-2048 key "webhook" on mount and
// returns it with a token-auth Config for that key.
func fakeKey(t *testing.T, mount string) (*vaulttest.Server, vault.Config) {
	t.Helper()
	s := startFake(t, vaulttest.Options{Transit: []string{mount}})
	if err := s.CreateKey(mount, "webhook", "rsa-2048"); err != nil {
		t.Fatal(err)
	}
	return s, vault.Config{
		Address: s.URL,
		Mount:   mount,
		Key:     "webhook",
		Auth:    vault.AuthConfig{Method: vault.AuthToken, Token: s.RootToken},
	}
}

func TestFake(t *testing.T) {
	t.Parallel()
	s := startFake(t, vaulttest.Options{})
	runCases(t, target{addr: s.URL, token: s.RootToken, keyType: "rsa-2048"})
}

// TestDecryptRequest checks what the provider sends: the version from the
// kid, never a fixed v1, and OAEP padding.
func TestDecryptRequest(t *testing.T) {
	t.Parallel()
	s, cfg := fakeKey(t, "kms/transit")
	k := newKey(t, cfg)
	v1 := encrypt(t, publicKey(t, k), "one")
	rotate(t, s, cfg)
	pk2 := publicKey(t, k)
	if pk2.KeyID != "vault://kms/transit/webhook?version=2" {
		t.Fatalf("PublicKey kid = %q", pk2.KeyID)
	}
	decrypt(t, k, encrypt(t, pk2, "two"), "two")
	decrypt(t, k, v1, "one")

	reqs := s.DecryptRequests()
	if len(reqs) != 2 {
		t.Fatalf("%d decrypt requests, want 2", len(reqs))
	}
	for i, prefix := range []string{"vault:v2:", "vault:v1:"} {
		r := reqs[i]
		if r.Mount != "kms/transit" || r.Key != "webhook" || !strings.HasPrefix(r.Ciphertext, prefix) || r.PaddingScheme != "oaep" {
			t.Errorf("decrypt request %d: mount %q key %q ciphertext %.12q… padding %q; want kms/transit webhook %s… oaep",
				i, r.Mount, r.Key, r.Ciphertext, r.PaddingScheme, prefix)
		}
	}
}

func rotate(t *testing.T, s *vaulttest.Server, cfg vault.Config) {
	t.Helper()
	tg := target{addr: s.URL, token: s.RootToken}
	e := &vaultEnv{target: tg, mount: cfg.Mount, admin: newAdmin(t, tg)}
	e.write(t, "keys/"+cfg.Key+"/rotate", map[string]any{})
}

// TestRefusedBeforeCallingVault checks that values Vault cannot open are
// refused without a request.
func TestRefusedBeforeCallingVault(t *testing.T) {
	t.Parallel()
	s, cfg := fakeKey(t, "transit")
	k := newKey(t, cfg)
	pk := publicKey(t, k)
	w := encrypt(t, pk, "x").Recipients[0]
	for _, mutate := range []func(*jwe.Recipient){
		func(w *jwe.Recipient) { w.Algorithm = "RSA-OAEP" },
		func(w *jwe.Recipient) { w.Algorithm = "ECDH-ES+A256KW" },
		func(w *jwe.Recipient) { w.KeyID = "vault://transit/other?version=1" },
		func(w *jwe.Recipient) { w.KeyID = "vault://transit/webhook" },
		func(w *jwe.Recipient) { w.KeyID = "vault://transit/webhook?version=01" },
		func(w *jwe.Recipient) { w.EncryptedKey = nil },
	} {
		w := w
		mutate(&w)
		if _, err := k.Unwrap(t.Context(), w); err == nil {
			t.Errorf("Unwrap(kid %q, alg %q, %d key bytes) succeeded", w.KeyID, w.Algorithm, len(w.EncryptedKey))
		}
	}
	if n := s.Calls(vaulttest.OpDecrypt); n != 0 {
		t.Errorf("%d decrypt calls, want 0", n)
	}
}

func TestKubernetesLoginAndRenewal(t *testing.T) {
	t.Parallel()
	s, cfg := fakeKey(t, "transit")
	jwt := "eyJhbGciOiJSUzI1NiJ9.service-account." + randomName()
	s.AddKubernetesRole("kubernetes", "jwe-webhook", jwt, vaulttest.TokenOptions{TTL: 2 * time.Second, Renewable: true})
	cfg.Auth = vault.AuthConfig{Method: vault.AuthKubernetes, Role: "jwe-webhook", ServiceAccountTokenFile: writeFile(t, "token", jwt)}
	log, logs := observedLogger()
	k, err := vault.New(t.Context(), cfg, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = k.Close() })

	waitFor(t, "renew-self", func() bool { return s.Calls(vaulttest.OpRenewSelf) >= 2 })
	decrypt(t, k, encrypt(t, publicKey(t, k), "renewed"), "renewed")
	if n := s.Calls(vaulttest.OpLogin); n != 1 {
		t.Errorf("%d logins, want 1: the token was renewable", n)
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if logs.FilterMessage("vault: token renewed").Len() == 0 {
		t.Error("renewal not logged")
	}
	noSecretsLogged(t, logs, append(s.IssuedTokens(), jwt)...)
}

func TestKubernetesReloginWhenNotRenewable(t *testing.T) {
	t.Parallel()
	s, cfg := fakeKey(t, "transit")
	s.AddKubernetesRole("k8s/prod", "jwe-webhook", "jwt", vaulttest.TokenOptions{TTL: 2 * time.Second})
	cfg.Auth = vault.AuthConfig{Method: vault.AuthKubernetes, Role: "jwe-webhook", KubernetesMount: "k8s/prod", ServiceAccountTokenFile: writeFile(t, "token", "jwt")}
	k := newKey(t, cfg)
	waitFor(t, "a second login", func() bool { return s.Calls(vaulttest.OpLogin) >= 2 })
	decrypt(t, k, encrypt(t, publicKey(t, k), "again"), "again")
}

func TestKubernetesReloginOnPermissionDenied(t *testing.T) {
	t.Parallel()
	s, cfg := fakeKey(t, "transit")
	s.AddKubernetesRole("kubernetes", "jwe-webhook", "jwt", vaulttest.TokenOptions{TTL: time.Hour, Renewable: true})
	cfg.Auth = vault.AuthConfig{Method: vault.AuthKubernetes, Role: "jwe-webhook", ServiceAccountTokenFile: writeFile(t, "token", "jwt")}
	k := newKey(t, cfg)
	obj := encrypt(t, publicKey(t, k), "x")
	for _, tok := range s.IssuedTokens() {
		s.RevokeToken(tok)
	}
	decrypt(t, k, obj, "x")
	if n := s.Calls(vaulttest.OpLogin); n != 2 {
		t.Errorf("%d logins, want 2", n)
	}
}

func TestKubernetesLoginRefused(t *testing.T) {
	t.Parallel()
	s, cfg := fakeKey(t, "transit")
	s.AddKubernetesRole("kubernetes", "jwe-webhook", "right", vaulttest.TokenOptions{})
	for _, c := range []struct{ role, jwt, want string }{
		{"jwe-webhook", "wrong", "vault: permission denied"},
		{"nobody", "right", `invalid role name "nobody"`},
	} {
		cfg.Auth = vault.AuthConfig{Method: vault.AuthKubernetes, Role: c.role, ServiceAccountTokenFile: writeFile(t, "token", c.jwt)}
		_, err := vault.New(t.Context(), cfg, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("login as %q: %v, want %q", c.role, err, c.want)
		}
	}
	cfg.Auth.ServiceAccountTokenFile = filepath.Join(t.TempDir(), "missing")
	if _, err := vault.New(t.Context(), cfg, nil); err == nil || !strings.Contains(err.Error(), "service-account token") {
		t.Errorf("login without a JWT file: %v", err)
	}
}

// TestTokenFileReread rotates the token in the file and revokes the old one:
// the provider re-reads the file once on 403.
func TestTokenFileReread(t *testing.T) {
	t.Parallel()
	s, cfg := fakeKey(t, "transit")
	s.AddToken("token-a", vaulttest.TokenOptions{})
	file := writeFile(t, "vault-token", "token-a\n")
	cfg.Auth = vault.AuthConfig{Method: vault.AuthToken, TokenFile: file}
	log, logs := observedLogger()
	k, err := vault.New(t.Context(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Close() })
	obj := encrypt(t, publicKey(t, k), "x")

	s.AddToken("token-b", vaulttest.TokenOptions{})
	if err := os.WriteFile(file, []byte("token-b"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.RevokeToken("token-a")
	decrypt(t, k, obj, "x")
	if n := s.Calls(vaulttest.OpDecrypt); n != 2 {
		t.Errorf("%d decrypt calls, want 2 (refused, then with the new token)", n)
	}

	s.RevokeToken("token-b")
	if err := decryptErr(t, k, obj); !errors.Is(err, vault.ErrPermissionDenied) {
		t.Errorf("revoked token, same file: %v, want ErrPermissionDenied", err)
	}
	noSecretsLogged(t, logs, "token-a", "token-b")
}

func TestStaticTokenRevoked(t *testing.T) {
	t.Parallel()
	s, cfg := fakeKey(t, "transit")
	s.AddToken("static", vaulttest.TokenOptions{})
	cfg.Auth.Token = "static"
	k := newKey(t, cfg)
	obj := encrypt(t, publicKey(t, k), "x")
	s.RevokeToken("static")
	err := decryptErr(t, k, obj)
	if !errors.Is(err, vault.ErrPermissionDenied) || errors.Is(err, jwe.ErrKeyMismatch) {
		t.Errorf("revoked token: %v, want ErrPermissionDenied", err)
	}
	if n := s.Calls(vaulttest.OpDecrypt); n != 1 {
		t.Errorf("%d decrypt calls, want 1", n)
	}
}

func TestServerDown(t *testing.T) {
	t.Parallel()
	s, cfg := fakeKey(t, "transit")
	k := newKey(t, cfg)
	obj := encrypt(t, publicKey(t, k), "x")

	s.SetUnavailable(true)
	err := decryptErr(t, k, obj)
	if errors.Is(err, jwe.ErrKeyMismatch) || !strings.Contains(err.Error(), "vault: HTTP 503: Vault is sealed") {
		t.Errorf("sealed: %v", err)
	}
	s.SetUnavailable(false)
	decrypt(t, k, obj, "x")

	// The first call may find the pooled connection closed, the next finds
	// no listener.
	s.Close()
	if err := decryptErr(t, k, obj); errors.Is(err, jwe.ErrKeyMismatch) || !strings.Contains(err.Error(), "vault: connection") {
		t.Errorf("server closed: %v", err)
	}
	if err := decryptErr(t, k, obj); !strings.Contains(err.Error(), "vault: connection refused") {
		t.Errorf("listener closed: %v", err)
	}
}

func TestSlowServer(t *testing.T) {
	t.Parallel()
	s, cfg := fakeKey(t, "transit")
	k := newKey(t, cfg)
	obj := encrypt(t, publicKey(t, k), "x")
	s.SetDelay(time.Minute)

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	// The server holds the call for a minute and then answers: only the
	// caller's deadline ending the call gives DeadlineExceeded.
	_, _, err := obj.Decrypt(ctx, unwrapper{k})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "vault: ") {
		t.Errorf("past the deadline: %v, want a vault error wrapping context.DeadlineExceeded", err)
	}

	cfg.Timeout = 200 * time.Millisecond
	s.SetDelay(0)
	short := newKey(t, cfg)
	s.SetDelay(time.Minute)
	if err := decryptErr(t, short, obj); !strings.Contains(err.Error(), "vault: request timed out") || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("past Config.Timeout: %v, want a timeout wrapping context.DeadlineExceeded", err)
	}
}

// TestTLS checks that certificates are verified against Config alone, not
// VAULT_* variables.
func TestTLS(t *testing.T) {
	t.Setenv("VAULT_SKIP_VERIFY", "true")
	t.Setenv("VAULT_CACERT", "")
	s := startFake(t, vaulttest.Options{TLS: true})
	if err := s.CreateKey("transit", "webhook", "rsa-2048"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VAULT_TOKEN", s.RootToken)
	base := vault.Config{Address: s.URL, Mount: "transit", Key: "webhook", Auth: vault.AuthConfig{Method: vault.AuthToken, Token: s.RootToken}}

	cfg := base
	cfg.TLS.CACert = writeFile(t, "ca.pem", string(s.CACertPEM()))
	publicKey(t, newKey(t, cfg))

	if _, err := vault.New(t.Context(), base, nil); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("unknown CA despite VAULT_SKIP_VERIFY: %v, want a certificate error", err)
	}

	cfg = base
	cfg.TLS.InsecureSkipVerify = true
	publicKey(t, newKey(t, cfg))

	cfg = base
	cfg.TLS.CACert = writeFile(t, "ca.pem", string(s.CACertPEM()))
	cfg.Auth.Token = "bad"
	if _, err := vault.New(t.Context(), cfg, nil); !errors.Is(err, vault.ErrPermissionDenied) {
		t.Errorf("bad token despite VAULT_TOKEN: %v, want ErrPermissionDenied", err)
	}
}

func TestNewConfigErrors(t *testing.T) {
	t.Parallel()
	ok := vault.Config{Address: "https://vault:8200", Mount: "transit", Key: "k", Auth: vault.AuthConfig{Method: vault.AuthToken, Token: "t"}}
	for _, c := range []struct {
		name   string
		mutate func(*vault.Config)
		want   string
	}{
		{"no address", func(c *vault.Config) { c.Address = "" }, "not an http(s) URL"},
		{"address scheme", func(c *vault.Config) { c.Address = "vault:8200" }, "not an http(s) URL"},
		{"plain http", func(c *vault.Config) { c.Address = "http://vault:8200" }, "plain http is allowed to loopback only"},
		{"no mount", func(c *vault.Config) { c.Mount = "" }, "empty mount"},
		{"bad mount", func(c *vault.Config) { c.Mount = "kms//transit" }, `mount "kms//transit"`},
		{"no key", func(c *vault.Config) { c.Key = "" }, `key name ""`},
		{"bad key", func(c *vault.Config) { c.Key = "a/b" }, `key name "a/b"`},
		{"no method", func(c *vault.Config) { c.Auth.Method = "" }, `auth method ""`},
		{"token and file", func(c *vault.Config) { c.Auth.TokenFile = "f" }, "exactly one of Token and TokenFile"},
		{"no token", func(c *vault.Config) { c.Auth.Token = "" }, "exactly one of Token and TokenFile"},
		{"kubernetes with token", func(c *vault.Config) { c.Auth.Method = vault.AuthKubernetes; c.Auth.Role = "r" }, "takes no Token"},
		{"kubernetes without role", func(c *vault.Config) { c.Auth = vault.AuthConfig{Method: vault.AuthKubernetes} }, "needs a Role"},
		{"insecure with CA", func(c *vault.Config) { c.TLS = vault.TLSConfig{CACert: "ca.pem", InsecureSkipVerify: true} }, "choose one"},
		{"CA file missing", func(c *vault.Config) { c.TLS.CACert = filepath.Join(t.TempDir(), "none.pem") }, "no such file"},
		{"CA file not PEM", func(c *vault.Config) { c.TLS.CACert = writeFile(t, "ca.pem", "junk") }, "holds no PEM certificate"},
		{"token file missing", func(c *vault.Config) {
			c.Auth = vault.AuthConfig{Method: vault.AuthToken, TokenFile: filepath.Join(t.TempDir(), "t")}
		}, "no such file"},
		{"token file empty", func(c *vault.Config) {
			c.Auth = vault.AuthConfig{Method: vault.AuthToken, TokenFile: writeFile(t, "t", "\n")}
		}, "file is empty"},
		{"negative timeout", func(c *vault.Config) { c.Timeout = -time.Second }, "negative timeout"},
	} {
		cfg := ok
		c.mutate(&cfg)
		_, err := vault.New(t.Context(), cfg, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// observedLogger returns a logger that records every entry.
func observedLogger() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zap.DebugLevel)
	return zap.New(core), logs
}

// noSecretsLogged fails the test when a log entry holds one of secrets.
func noSecretsLogged(t *testing.T, logs *observer.ObservedLogs, secrets ...string) {
	t.Helper()
	for _, e := range logs.All() {
		text := e.Message
		for k, v := range e.ContextMap() {
			text += " " + k + "=" + toString(v)
		}
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("log entry %q holds a secret", e.Message)
			}
		}
	}
}

func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []any:
		var b strings.Builder
		for _, x := range v {
			b.WriteString(toString(x) + " ")
		}
		return b.String()
	case error:
		return v.Error()
	}
	return ""
}

// waitFor polls cond until it holds, failing the test after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
