// Package azkvtest is an in-process Azure Key Vault for tests, with the
// Microsoft Entra token endpoint the client logs in at: one HTTPS server
// speaking the real REST API for the calls the azkv provider makes (getKey,
// unwrapKey) and the OAuth 2.0 client-credentials flow that workload identity
// uses (a federated service-account token exchanged for an access token). It
// answers a request without a bearer token with the authentication challenge
// Key Vault sends (401, WWW-Authenticate: Bearer authorization=…,
// resource=…), as the SDK expects, and accepts only tokens it issued. It holds
// RSA key versions in memory, counts calls and can be told to misbehave.
// Tests start it with Start; a standalone program (a fake for an end-to-end
// cluster) with NewServer.
//
// The vault's URL and the authority's are both the server's URL, e.g.
// https://127.0.0.1:PORT; its certificate is for 127.0.0.1 and is its own CA
// (CACertPEM).
package azkvtest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwe-webhook/jwe-webhook/internal/kms/azkv"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/kmstest"
)

// Server is a fake Key Vault and token endpoint. Its methods are safe for
// concurrent use.
type Server struct {
	// URL is the vault's URL and the authority host, https://127.0.0.1:PORT.
	URL string
	// TenantID, ClientID and FederatedToken are what the token endpoint
	// accepts: the tenant and application, and the service-account token
	// workload identity presents.
	TenantID, ClientID, FederatedToken string

	srv *httptest.Server

	mu     sync.Mutex
	keys   map[string][]*version // by name, oldest first
	tokens map[string]bool       // access tokens issued

	rec kmstest.Record[Faults, Calls]
}

type version struct {
	id      string
	kty     string // RSA or RSA-HSM
	priv    *rsa.PrivateKey
	ops     []string
	enabled bool
}

// Faults make the server misbehave. The zero value is a well-behaved server.
type Faults struct {
	// Status, unless 0, fails every vault call (getKey, unwrapKey) that
	// carries a valid token with that HTTP status and an error body like
	// Key Vault's: 403 Forbidden, 429 Throttled, 503 ServiceUnavailable…
	Status int
	// RefuseToken answers the token endpoint with invalid_client, as
	// Microsoft Entra ID does when no federated credential matches.
	RefuseToken bool
	// Delay holds every vault call this long before answering, or until
	// the client goes away.
	Delay time.Duration
}

// Calls counts the calls the server received, faulty ones included.
type Calls struct {
	// GetKey and UnwrapKey count authenticated vault calls; Challenge the
	// vault calls answered with 401; Token the token requests.
	GetKey, UnwrapKey, Challenge, Token int
}

// NewServer starts a server listening on addr, e.g. "127.0.0.1:0", with
// random tenant, client and federated token. Stop it with Close.
func NewServer(addr string) (*Server, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fake key vault: %w", err)
	}
	s := &Server{
		TenantID:       uuid(),
		ClientID:       uuid(),
		FederatedToken: "eyJhbGciOiJSUzI1NiJ9.service-account." + rand.Text(),
		keys:           make(map[string][]*version),
		tokens:         make(map[string]bool),
	}
	s.serve(lis)
	s.URL = s.srv.URL
	return s, nil
}

func (s *Server) serve(lis net.Listener) {
	s.srv = httptest.NewUnstartedServer(s.routes())
	s.srv.Listener.Close()
	s.srv.Listener = lis
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // clients that distrust the CA are tests
	s.srv.StartTLS()
}

// Restart listens again on the address Close stopped listening on, with the
// same keys, tokens and certificate.
func (s *Server) Restart() error {
	lis, err := net.Listen("tcp", strings.TrimPrefix(s.URL, "https://"))
	if err != nil {
		return fmt.Errorf("fake key vault: %w", err)
	}
	s.serve(lis)
	return nil
}

// Start starts a server on a free loopback port for the test and closes it
// when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return kmstest.Serve(tb, func() (*Server, error) { return NewServer("127.0.0.1:0") })
}

// Close stops the server, ending calls in progress: connections are refused
// until Restart.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// CACertPEM returns the PEM certificate that verifies the server's.
func (s *Server) CACertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
}

// WriteFiles writes the CA certificate and the federated token into dir and
// returns their paths, for a client configured by files.
func (s *Server) WriteFiles(dir string) (caFile, tokenFile string, err error) {
	caFile, tokenFile = filepath.Join(dir, "azkv-ca.pem"), filepath.Join(dir, "azure-identity-token")
	if err := os.WriteFile(caFile, s.CACertPEM(), 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(tokenFile, []byte(s.FederatedToken), 0o600); err != nil {
		return "", "", err
	}
	return caFile, tokenFile, nil
}

// Options returns the options that point an azkv client at the server:
// its CA, its authority and workload identity with its federated token,
// written to files in a temporary directory of tb.
func (s *Server) Options(tb testing.TB) []azkv.Option {
	tb.Helper()
	caFile, tokenFile, err := s.WriteFiles(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	return []azkv.Option{
		azkv.WithCAFile(caFile),
		azkv.WithAuthorityHost(s.URL),
		azkv.WithWorkloadIdentity(s.ClientID, s.TenantID, tokenFile),
	}
}

// AddVersion adds an enabled version to the key name (creating the key) and
// returns the version's URL, the kid values carry. ops are its permitted
// operations; none means every RSA operation.
func (s *Server) AddVersion(name string, priv *rsa.PrivateKey, ops ...string) string {
	if len(ops) == 0 {
		ops = []string{"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"}
	}
	v := &version{id: newVersion(), kty: "RSA", priv: priv, ops: ops, enabled: true}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[name] = append(s.keys[name], v)
	return s.URL + "/keys/" + name + "/" + v.id
}

// SetEnabled enables or disables the key version kid.
func (s *Server) SetEnabled(kid string, enabled bool) error {
	return s.update(kid, func(v *version) { v.enabled = enabled })
}

// SetHSM makes the key version kid an HSM-protected key (kty RSA-HSM), as a
// Premium vault or a Managed HSM holds it.
func (s *Server) SetHSM(kid string) error {
	return s.update(kid, func(v *version) { v.kty = "RSA-HSM" })
}

func (s *Server) update(kid string, f func(*version)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, vs := range s.keys {
		for _, v := range vs {
			if s.URL+"/keys/"+name+"/"+v.id == kid {
				f(v)
				return nil
			}
		}
	}
	return fmt.Errorf("fake key vault: no key version %q", kid)
}

// SetFaults replaces the server's faults; Faults{} heals it.
func (s *Server) SetFaults(f Faults) { s.rec.SetFaults(f) }

// RevokeTokens forgets every access token issued, so that the next vault
// call is challenged again.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// Calls returns how many calls of each kind the server received.
func (s *Server) Calls() Calls { return s.rec.Calls() }

func newVersion() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func uuid() string {
	b := make([]byte, 16)
	rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
