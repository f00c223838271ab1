// Package vaulttest is an in-process stand-in for the parts of HashiCorp Vault
// that the vault key service talks to, speaking Vault's HTTP API as Vault
// documents it:
//
//   - the transit engine at any mount path, nested ones too: create, read,
//     rotate, configure and delete keys (rsa-2048, rsa-3072, rsa-4096 and,
//     without crypto, aes256-gcm96); encrypt and decrypt with RSA keys;
//   - POST sys/mounts/<path> and DELETE sys/mounts/<path> for transit mounts;
//   - POST auth/<mount>/login of the Kubernetes auth method;
//   - POST auth/token/renew-self and GET auth/token/lookup-self.
//
// Every call but login needs a valid X-Vault-Token; Vault's answer to any
// other is 403 {"errors":["permission denied"]}. Errors have Vault's
// {"errors":[…]} shape and status codes.
//
// Fault knobs: SetUnavailable (503 "Vault is sealed"), SetDelay, Close (the
// listener is gone: connection refused); Calls counts the requests of each
// operation and DecryptRequests records what decrypt received.
//
// The server needs no testing.TB, so end-to-end suites and benchmarks can use
// it too. RSA key generation is slow for rsa-4096 (seconds); tests should
// prefer rsa-2048.
package vaulttest

import (
	"bytes"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/jwe-webhook/jwe-webhook/internal/kms/kmstest"
)

// Operations, as Calls counts them.
const (
	OpLogin      = "login"
	OpRenewSelf  = "renew-self"
	OpLookupSelf = "lookup-self"
	OpMount      = "mount"   // POST or DELETE sys/mounts/<path>
	OpKeys       = "keys"    // create, read or delete a transit key
	OpRotate     = "rotate"  // POST <mount>/keys/<name>/rotate
	OpConfig     = "config"  // POST <mount>/keys/<name>/config
	OpEncrypt    = "encrypt" // POST <mount>/encrypt/<name>
	OpDecrypt    = "decrypt" // POST <mount>/decrypt/<name>
	OpOther      = "other"
)

// maxBody caps a request body, as Vault's listener does (at 32 MiB).
const maxBody = 1 << 20

// Options configures a Server.
type Options struct {
	// TLS serves HTTPS with a certificate for 127.0.0.1; CACertPEM returns
	// the CA to trust.
	TLS bool
	// RootToken is the token allowed everything; empty means a random one.
	RootToken string
	// Transit lists the transit mounts to enable at start; nil means
	// ["transit"].
	Transit []string
}

// TokenOptions describes a token the server accepts.
type TokenOptions struct {
	// TTL is the token's lifetime, renewed to TTL again by renew-self; zero
	// means it never expires.
	TTL time.Duration
	// Renewable says whether renew-self may extend it.
	Renewable bool
	// Root allows sys/ paths.
	Root bool
	// Policies are reported by lookup-self, login and renew-self.
	Policies []string
}

// DecryptRequest is what one decrypt call received.
type DecryptRequest struct {
	Mount, Key    string
	Ciphertext    string
	PaddingScheme string
}

// Server is the stand-in Vault. Its methods are safe for concurrent use.
type Server struct {
	// URL is the address to give the client, e.g. "http://127.0.0.1:41234".
	URL string
	// RootToken is a token allowed everything.
	RootToken string

	srv *httptest.Server

	mu          sync.Mutex
	mounts      map[string]*mount
	tokens      map[string]*token
	roles       map[string]map[string]*role // Kubernetes auth mount → role name → role
	unavailable bool
	delay       time.Duration
	calls       map[string]int
	decrypts    []DecryptRequest
	issued      []string // tokens issued by login, in order
}

type token struct {
	TokenOptions
	expires  time.Time // zero: never
	created  time.Time
	accessor string
}

type role struct {
	jwt string
	TokenOptions
}

// New starts a Server. Close it when done.
func New(opts Options) *Server {
	s := &Server{
		RootToken: opts.RootToken,
		mounts:    map[string]*mount{},
		tokens:    map[string]*token{},
		roles:     map[string]map[string]*role{},
		calls:     map[string]int{},
	}
	if s.RootToken == "" {
		s.RootToken = newTokenID()
	}
	s.AddToken(s.RootToken, TokenOptions{Root: true, Policies: []string{"root"}})
	transit := opts.Transit
	if transit == nil {
		transit = []string{"transit"}
	}
	for _, m := range transit {
		s.mounts[strings.Trim(m, "/")] = newMount()
	}
	if opts.TLS {
		s.srv = httptest.NewTLSServer(s)
	} else {
		s.srv = httptest.NewServer(s)
	}
	s.URL = s.srv.URL
	return s
}

// Close shuts the server down: later connections are refused. It waits for
// requests in flight.
func (s *Server) Close() { s.srv.Close() }

// CACertPEM returns the PEM certificate of a TLS server, to trust as its CA;
// nil for a plain HTTP server.
func (s *Server) CACertPEM() []byte {
	if s.srv.TLS == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
}

// AddToken makes the server accept tok.
func (s *Server) AddToken(tok string, o TokenOptions) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addTokenLocked(tok, o)
}

func (s *Server) addTokenLocked(tok string, o TokenOptions) *token {
	now := time.Now()
	t := &token{TokenOptions: o, created: now, accessor: randomString(18)}
	if o.TTL > 0 {
		t.expires = now.Add(o.TTL)
	}
	s.tokens[tok] = t
	return t
}

// RevokeToken makes the server refuse tok.
func (s *Server) RevokeToken(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, tok)
}

// AddKubernetesRole lets the Kubernetes auth method at authMount (e.g.
// "kubernetes") log in as role with the service-account JWT jwt; the tokens
// it issues have the options o.
func (s *Server) AddKubernetesRole(authMount, roleName, jwt string, o TokenOptions) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.roles[authMount] == nil {
		s.roles[authMount] = map[string]*role{}
	}
	s.roles[authMount][roleName] = &role{jwt: jwt, TokenOptions: o}
}

// SetUnavailable makes every request fail with 503 "Vault is sealed", or
// stops that.
func (s *Server) SetUnavailable(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unavailable = down
}

// SetDelay makes every request wait d before it is handled (or until the
// client gives up).
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Calls returns how many requests of the operation op (OpDecrypt, …) arrived,
// counting refused ones.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// IssuedTokens returns the tokens that logins issued, in order.
func (s *Server) IssuedTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.issued...)
}

// DecryptRequests returns what every decrypt call received, in order.
func (s *Server) DecryptRequests() []DecryptRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]DecryptRequest(nil), s.decrypts...)
}

// ServeHTTP answers one Vault API request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, ok := strings.CutPrefix(r.URL.Path, "/v1/")
	if !ok {
		writeErrors(w, http.StatusNotFound)
		return
	}
	method := r.Method
	if method == http.MethodPut {
		method = http.MethodPost // Vault treats PUT as POST
	}

	s.mu.Lock()
	s.calls[operation(method, p)]++
	delay, down := s.delay, s.unavailable
	s.mu.Unlock()

	if delay > 0 {
		// Read the body first: only then does the server notice a client
		// that hangs up, and cancel r.Context().
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			writeErrors(w, http.StatusBadRequest, "failed to read request body")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if kmstest.Hold(r.Context(), delay) != nil {
			return // the client went away
		}
	}
	if down {
		writeErrors(w, http.StatusServiceUnavailable, "Vault is sealed")
		return
	}

	if authMount, ok := loginPath(p); ok && method == http.MethodPost {
		s.login(w, r, authMount)
		return
	}
	tokenID := r.Header.Get("X-Vault-Token")
	s.mu.Lock()
	tok := s.validToken(tokenID)
	s.mu.Unlock()
	if tok == nil {
		writeErrors(w, http.StatusForbidden, "permission denied")
		return
	}
	switch {
	case p == "auth/token/lookup-self" && method == http.MethodGet:
		s.lookupSelf(w, tokenID)
	case p == "auth/token/renew-self" && method == http.MethodPost:
		s.renewSelf(w, tokenID)
	case strings.HasPrefix(p, "sys/"):
		if !tok.Root {
			writeErrors(w, http.StatusForbidden, "permission denied")
			return
		}
		s.sys(w, r, method, p)
	default:
		s.transit(w, r, method, p)
	}
}

// operation names the operation of a request for Calls.
func operation(method, p string) string {
	switch {
	case p == "auth/token/lookup-self":
		return OpLookupSelf
	case p == "auth/token/renew-self":
		return OpRenewSelf
	case strings.HasPrefix(p, "sys/mounts/"):
		return OpMount
	}
	if _, ok := loginPath(p); ok {
		return OpLogin
	}
	parts := strings.Split(p, "/")
	n := len(parts)
	switch {
	case n >= 3 && parts[n-2] == "decrypt":
		return OpDecrypt
	case n >= 3 && parts[n-2] == "encrypt":
		return OpEncrypt
	case n >= 4 && parts[n-3] == "keys" && parts[n-1] == "rotate":
		return OpRotate
	case n >= 4 && parts[n-3] == "keys" && parts[n-1] == "config":
		return OpConfig
	case n >= 3 && parts[n-2] == "keys":
		return OpKeys
	}
	return OpOther
}

// loginPath returns the auth mount of "auth/<mount>/login".
func loginPath(p string) (string, bool) {
	rest, ok := strings.CutPrefix(p, "auth/")
	if !ok {
		return "", false
	}
	authMount, ok := strings.CutSuffix(rest, "/login")
	return authMount, ok && authMount != "" && authMount != "token"
}

// validToken returns the token id names if it is known and not expired.
func (s *Server) validToken(id string) *token {
	t := s.tokens[id]
	if t == nil || !t.expires.IsZero() && !time.Now().Before(t.expires) {
		return nil
	}
	return t
}
