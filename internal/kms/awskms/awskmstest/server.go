// Package awskmstest is an in-process AWS KMS for tests: an HTTP server that
// speaks the real AWS JSON 1.1 protocol ("X-Amz-Target: TrentService.…") for
// the calls the awskms provider makes (GetPublicKey, Decrypt), checks each
// request's SigV4 signature against the access keys it knows, holds RSA keys
// in memory, counts calls and can be told to misbehave. Tests start it with
// Start; a standalone program (a fake for an end-to-end cluster) with
// NewServer.
//
// It answers as the API documents: a key is found by key ARN, key ID, alias
// name or alias ARN, in the region the request was signed for; Decrypt needs
// an EncryptionAlgorithm the key offers (InvalidKeyUsageException otherwise),
// a ciphertext that does not decrypt is InvalidCiphertextException, a
// disabled key DisabledException, an unknown one NotFoundException, a bad
// signature InvalidSignatureException and an unknown access key
// UnrecognizedClientException.
package awskmstest

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwe-webhook/jwe-webhook/internal/kms/awskms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/kmstest"
)

// Server is a fake AWS KMS listening on a TCP address. Its methods are safe
// for concurrent use.
type Server struct {
	// URL is the endpoint, http://host:port.
	URL string
	// AccessKeyID and SecretAccessKey are the credentials the server
	// accepts.
	AccessKeyID, SecretAccessKey string

	lis    net.Listener
	http   *http.Server
	served chan struct{}

	mu      sync.Mutex
	keys    map[string]*key   // by ARN
	aliases map[string]string // alias ARN → key ARN

	rec kmstest.Record[Faults, Calls]
}

type key struct {
	arn, region, id string
	usage           string // ENCRYPT_DECRYPT or SIGN_VERIFY
	enabled         bool
	priv            *rsa.PrivateKey
}

// Faults make the server misbehave. The zero value is a well-behaved server.
type Faults struct {
	// Error, unless empty, fails every call with that AWS error code and a
	// message like AWS KMS's: "AccessDeniedException" (HTTP 400),
	// "KMSInternalException" (500), "ServiceUnavailableException" (503),
	// "ThrottlingException" (400)…
	Error string
	// Delay holds every call this long before answering, or until the
	// client goes away.
	Delay time.Duration
}

// Calls counts the calls the server received, faulty ones included.
type Calls struct {
	GetPublicKey, Decrypt int
}

// NewServer starts a server listening on addr, e.g. "127.0.0.1:0" for a free
// loopback port, accepting the given credentials. Stop it with Close.
func NewServer(addr, accessKeyID, secretAccessKey string) (*Server, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fake aws kms: %w", err)
	}
	s := &Server{
		URL:             "http://" + lis.Addr().String(),
		AccessKeyID:     accessKeyID,
		SecretAccessKey: secretAccessKey,
		keys:            make(map[string]*key),
		aliases:         make(map[string]string),
	}
	s.serve(lis)
	return s, nil
}

func (s *Server) serve(lis net.Listener) {
	s.lis, s.served = lis, make(chan struct{})
	s.http = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.served)
		_ = s.http.Serve(lis) // returns when Close stops the server
	}()
}

// Restart listens again on the address Close stopped listening on, with the
// same keys and credentials.
func (s *Server) Restart() error {
	lis, err := net.Listen("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		return fmt.Errorf("fake aws kms: %w", err)
	}
	s.serve(lis)
	return nil
}

// Start starts a server on a free loopback port with random credentials for
// the test and closes it when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return kmstest.Serve(tb, func() (*Server, error) {
		return NewServer("127.0.0.1:0", "AKIA"+rand.Text()[:16], rand.Text())
	})
}

// Options returns the options that point an awskms client at the server:
// its endpoint and credentials.
func (s *Server) Options() []awskms.Option {
	return []awskms.Option{
		awskms.WithEndpoint(s.URL),
		awskms.WithStaticCredentials(s.AccessKeyID, s.SecretAccessKey),
	}
}

// Close stops the server, ending calls in progress: connections are refused
// until Restart.
func (s *Server) Close() {
	_ = s.http.Close()
	<-s.served
}

// AddKey adds an enabled RSA key with key usage ENCRYPT_DECRYPT (it offers
// RSAES_OAEP_SHA_1 and RSAES_OAEP_SHA_256). arn is a key ARN whose size is
// priv's: 2048, 3072 or 4096 bits.
func (s *Server) AddKey(arn string, priv *rsa.PrivateKey) error {
	return s.add(arn, "ENCRYPT_DECRYPT", priv)
}

// AddSigningKey adds an enabled RSA key with key usage SIGN_VERIFY: its
// public key is served, but it decrypts nothing.
func (s *Server) AddSigningKey(arn string, priv *rsa.PrivateKey) error {
	return s.add(arn, "SIGN_VERIFY", priv)
}

func (s *Server) add(arn, usage string, priv *rsa.PrivateKey) error {
	region, err := awskms.ParseKeyARN(arn)
	if err != nil {
		return fmt.Errorf("fake aws kms: %w", err)
	}
	if _, ok := keySpec(priv); !ok {
		return fmt.Errorf("fake aws kms: a %d-bit key has no RSA key spec", priv.N.BitLen())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[arn]; ok {
		return fmt.Errorf("fake aws kms: %q already exists", arn)
	}
	_, id, _ := strings.Cut(arn, ":key/")
	s.keys[arn] = &key{arn: arn, region: region, id: id, usage: usage, enabled: true, priv: priv}
	return nil
}

// SetAlias points the alias (alias/NAME) in the key's region and account at
// the key, creating or moving it.
func (s *Server) SetAlias(alias, keyARN string) error {
	if !strings.HasPrefix(alias, "alias/") {
		return fmt.Errorf("fake aws kms: alias %q does not start with alias/", alias)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[keyARN]; !ok {
		return fmt.Errorf("fake aws kms: no key %q", keyARN)
	}
	prefix, _, _ := strings.Cut(keyARN, ":key/")
	s.aliases[prefix+":"+alias] = keyARN
	return nil
}

// SetEnabled enables or disables a key.
func (s *Server) SetEnabled(arn string, enabled bool) error {
	if !kmstest.Update(&s.mu, s.keys, arn, func(k *key) { k.enabled = enabled }) {
		return fmt.Errorf("fake aws kms: no key %q", arn)
	}
	return nil
}

// SetFaults replaces the server's faults; Faults{} heals it.
func (s *Server) SetFaults(f Faults) { s.rec.SetFaults(f) }

// Calls returns how many calls of each operation the server received.
func (s *Server) Calls() Calls { return s.rec.Calls() }

// find returns the key ref names in region and account: a key ARN, an alias
// ARN, a key ID or an alias name.
func (s *Server) find(ref, region, account string) (*key, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prefix := "arn:aws:kms:" + region + ":" + account
	arn := ref
	switch {
	case strings.HasPrefix(ref, "alias/"):
		arn = s.aliases[prefix+":"+ref]
	case strings.Contains(ref, ":alias/"):
		arn = s.aliases[ref]
	case !strings.HasPrefix(ref, "arn:"):
		arn = prefix + ":key/" + ref
	}
	k, ok := s.keys[arn]
	if !ok || k.region != region {
		return nil, &apiError{status: http.StatusBadRequest, code: "NotFoundException", msg: fmt.Sprintf("Key '%s' does not exist", ref)}
	}
	return k, nil
}

// apiError is an error answer of the JSON 1.1 protocol.
type apiError struct {
	status    int
	code, msg string
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

// faultError returns the error for an injected fault code.
func faultError(code, op, resource string) *apiError {
	switch code {
	case "AccessDeniedException":
		return &apiError{http.StatusBadRequest, code, fmt.Sprintf(
			"User: arn:aws:sts::111122223333:assumed-role/jwe-webhook/session is not authorized to perform: kms:%s on resource: %s because no identity-based policy allows the kms:%s action", op, resource, op)}
	case "KMSInternalException":
		return &apiError{http.StatusInternalServerError, code, "An internal error occurred."}
	case "ServiceUnavailableException":
		return &apiError{http.StatusServiceUnavailable, code, "Service Unavailable"}
	case "ThrottlingException":
		return &apiError{http.StatusBadRequest, code, "Rate exceeded"}
	}
	return &apiError{http.StatusBadRequest, code, "fake aws kms: injected " + code}
}
