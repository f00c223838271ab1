// Package gcpkmstest is an in-process Cloud KMS for tests: a gRPC server that
// speaks the real KeyManagementService protocol for the calls the gcpkms
// provider makes (GetPublicKey, AsymmetricDecrypt, ListCryptoKeyVersions),
// holds RSA key versions in memory, counts calls and can be told to
// misbehave. Tests start it with Start; a standalone program (a fake for an
// end-to-end cluster) with NewServer.
//
// It answers as the API documents: AsymmetricDecrypt checks
// ciphertext_crc32c (InvalidArgument when it does not match) and reports
// verified_ciphertext_crc32c and plaintext_crc32c; a ciphertext that does not
// decrypt is InvalidArgument, a version that is not ENABLED FailedPrecondition,
// an unknown one NotFound. A crypto key exists when it has a version.
package gcpkmstest

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"hash/crc32"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/jwe-webhook/jwe-webhook/internal/kms/gcpkms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/kmstest"
)

// Server is a fake Cloud KMS listening on a TCP address. Its methods are safe
// for concurrent use.
type Server struct {
	lis    net.Listener
	grpc   *grpc.Server
	served chan struct{} // closed when Serve returns

	mu       sync.Mutex
	versions map[string]*version // by name

	rec kmstest.Record[Faults, Calls]
}

type version struct {
	alg   kmspb.CryptoKeyVersion_CryptoKeyVersionAlgorithm
	state kmspb.CryptoKeyVersion_CryptoKeyVersionState
	key   *rsa.PrivateKey
}

// Faults make the server misbehave. The zero value is a well-behaved server.
type Faults struct {
	// Code, unless codes.OK, fails every call with that status and a
	// message like Cloud KMS's (codes.PermissionDenied, codes.Unavailable…).
	Code codes.Code
	// Delay holds every call this long before answering, or until the
	// caller's context ends.
	Delay time.Duration
	// UnverifiedCiphertext answers AsymmetricDecrypt with
	// verified_ciphertext_crc32c false, as when the request's checksum did not
	// reach the service.
	UnverifiedCiphertext bool
	// CorruptPlaintext answers AsymmetricDecrypt with a plaintext_crc32c that
	// does not match the plaintext.
	CorruptPlaintext bool
	// CorruptPublicKey answers GetPublicKey with a pem_crc32c that does not
	// match the PEM.
	CorruptPublicKey bool
}

// Calls counts the calls the server received, faulty ones included.
type Calls struct {
	GetPublicKey, AsymmetricDecrypt, ListCryptoKeyVersions int
}

// NewServer starts a server listening on addr, e.g. "127.0.0.1:0" for a free
// loopback port. Stop it with Close.
func NewServer(addr string) (*Server, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fake cloud kms: %w", err)
	}
	s := &Server{
		lis:      lis,
		grpc:     grpc.NewServer(),
		served:   make(chan struct{}),
		versions: make(map[string]*version),
	}
	kmspb.RegisterKeyManagementServiceServer(s.grpc, &service{s: s})
	go func() {
		defer close(s.served)
		_ = s.grpc.Serve(lis) // returns when Close stops the server
	}()
	return s, nil
}

// Start starts a server on a free loopback port for the test and closes it
// when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return kmstest.Serve(tb, func() (*Server, error) { return NewServer("127.0.0.1:0") })
}

// Addr returns the address the server listens on (host:port).
func (s *Server) Addr() string { return s.lis.Addr().String() }

// ClientOptions returns the options that point a Cloud KMS client at the
// server: its address, no credentials, plaintext gRPC.
func (s *Server) ClientOptions() []option.ClientOption {
	return gcpkms.Endpoint{Address: s.Addr(), Insecure: true}.ClientOptions()
}

// Close stops the server, ending calls in progress.
func (s *Server) Close() {
	s.grpc.Stop()
	<-s.served
}

var (
	cryptoKeyName = regexp.MustCompile(`^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$`)
	versionName   = regexp.MustCompile(`^(projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+)/cryptoKeyVersions/[1-9][0-9]*$`)
	rsaAlgorithm  = regexp.MustCompile(`^RSA_(SIGN|DECRYPT)_[A-Z0-9_]*?_(2048|3072|4096)(_|$)`)
)

// AddVersion adds an ENABLED key version. name is a full key version name;
// alg is an RSA algorithm (RSA_DECRYPT_OAEP_* decrypts, RSA_SIGN_* only
// serves its public key) whose size is key's.
func (s *Server) AddVersion(name string, alg kmspb.CryptoKeyVersion_CryptoKeyVersionAlgorithm, key *rsa.PrivateKey) error {
	if !versionName.MatchString(name) {
		return fmt.Errorf("fake cloud kms: %q is not a key version name", name)
	}
	m := rsaAlgorithm.FindStringSubmatch(alg.String())
	if m == nil {
		return fmt.Errorf("fake cloud kms: %s is not an RSA algorithm", alg)
	}
	if bits := strconv.Itoa(key.N.BitLen()); bits != m[2] {
		return fmt.Errorf("fake cloud kms: %s takes a %s-bit key, not %s bits", alg, m[2], bits)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.versions[name]; ok {
		return fmt.Errorf("fake cloud kms: %q already exists", name)
	}
	s.versions[name] = &version{alg: alg, state: kmspb.CryptoKeyVersion_ENABLED, key: key}
	return nil
}

// SetState sets a key version's state, e.g. kmspb.CryptoKeyVersion_DISABLED.
func (s *Server) SetState(name string, state kmspb.CryptoKeyVersion_CryptoKeyVersionState) error {
	if !kmstest.Update(&s.mu, s.versions, name, func(v *version) { v.state = state }) {
		return fmt.Errorf("fake cloud kms: no key version %q", name)
	}
	return nil
}

// SetFaults replaces the server's faults; Faults{} heals it.
func (s *Server) SetFaults(f Faults) { s.rec.SetFaults(f) }

// Calls returns how many calls of each method the server received.
func (s *Server) Calls() Calls { return s.rec.Calls() }

// service implements the gRPC service; it is apart from Server so that the
// unimplemented methods stay out of Server's API.
type service struct {
	kmspb.UnimplementedKeyManagementServiceServer
	s *Server
}

// enter counts a call and applies the faults that every method shares. It
// returns the faults in force for the method's own checks.
func (s *Server) enter(ctx context.Context, count func(*Calls), permission, resource string) (Faults, error) {
	f := s.rec.Count(count)
	if err := kmstest.Hold(ctx, f.Delay); err != nil {
		return f, status.FromContextError(err).Err()
	}
	switch f.Code {
	case codes.OK:
		return f, nil
	case codes.PermissionDenied:
		return f, status.Errorf(f.Code, "Permission '%s' denied on resource '%s' (or it may not exist).", permission, resource)
	case codes.Unavailable:
		return f, status.Error(f.Code, "The service is currently unavailable.")
	}
	return f, status.Errorf(f.Code, "fake cloud kms: injected %s", f.Code)
}

// usableVersion enters a call on the version name and returns the version,
// which must be ENABLED, with the faults in force.
func (s *Server) usableVersion(ctx context.Context, count func(*Calls), permission, name string) (*version, Faults, error) {
	f, err := s.enter(ctx, count, permission, name)
	if err != nil {
		return nil, f, err
	}
	v, err := s.version(name)
	return v, f, err
}

// version returns the ENABLED version name.
func (s *Server) version(name string) (*version, error) {
	if !versionName.MatchString(name) {
		return nil, status.Errorf(codes.InvalidArgument, "Resource name [%s] does not represent a valid CryptoKeyVersion.", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.versions[name]
	switch {
	case !ok:
		return nil, status.Errorf(codes.NotFound, "CryptoKeyVersion %s not found.", name)
	case v.state != kmspb.CryptoKeyVersion_ENABLED:
		return nil, status.Errorf(codes.FailedPrecondition, "%s is not enabled, current state is: %s.", name, v.state)
	}
	return v, nil
}

func (svc *service) GetPublicKey(ctx context.Context, req *kmspb.GetPublicKeyRequest) (*kmspb.PublicKey, error) {
	s := svc.s
	v, f, err := s.usableVersion(ctx, func(c *Calls) { c.GetPublicKey++ }, "cloudkms.cryptoKeyVersions.viewPublicKey", req.GetName())
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(&v.key.PublicKey)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	p := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	sum := crc32c([]byte(p))
	if f.CorruptPublicKey {
		sum ^= 1
	}
	return &kmspb.PublicKey{
		Pem:             p,
		PemCrc32C:       wrapperspb.Int64(sum),
		Algorithm:       v.alg,
		Name:            req.GetName(),
		ProtectionLevel: kmspb.ProtectionLevel_SOFTWARE,
	}, nil
}

func (svc *service) AsymmetricDecrypt(ctx context.Context, req *kmspb.AsymmetricDecryptRequest) (*kmspb.AsymmetricDecryptResponse, error) {
	s := svc.s
	v, f, err := s.usableVersion(ctx, func(c *Calls) { c.AsymmetricDecrypt++ }, "cloudkms.cryptoKeyVersions.useToDecrypt", req.GetName())
	if err != nil {
		return nil, err
	}
	h, ok := oaepHash(v.alg)
	if !ok {
		return nil, status.Errorf(codes.FailedPrecondition, "%s has algorithm %s, which does not decrypt.", req.GetName(), v.alg)
	}
	sum := req.GetCiphertextCrc32C()
	if sum != nil && sum.GetValue() != crc32c(req.GetCiphertext()) {
		return nil, status.Error(codes.InvalidArgument, "The checksum in field ciphertext_crc32c did not match the data in field ciphertext.")
	}
	plaintext, err := rsa.DecryptOAEP(h.New(), rand.Reader, v.key, req.GetCiphertext(), nil)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "Decryption failed: the ciphertext is invalid.")
	}
	plainSum := crc32c(plaintext)
	if f.CorruptPlaintext {
		plainSum ^= 1
	}
	return &kmspb.AsymmetricDecryptResponse{
		Plaintext:                plaintext,
		PlaintextCrc32C:          wrapperspb.Int64(plainSum),
		VerifiedCiphertextCrc32C: sum != nil && !f.UnverifiedCiphertext,
		ProtectionLevel:          kmspb.ProtectionLevel_SOFTWARE,
	}, nil
}

// oaepHash returns the OAEP hash of a decryption algorithm.
func oaepHash(alg kmspb.CryptoKeyVersion_CryptoKeyVersionAlgorithm) (crypto.Hash, bool) {
	name := alg.String()
	if !strings.HasPrefix(name, "RSA_DECRYPT_OAEP_") {
		return 0, false
	}
	switch {
	case strings.HasSuffix(name, "_SHA256"):
		return crypto.SHA256, true
	case strings.HasSuffix(name, "_SHA1"):
		return crypto.SHA1, true
	case strings.HasSuffix(name, "_SHA512"):
		return crypto.SHA512, true
	}
	return 0, false
}

// defaultPageSize is small so that clients' paging is exercised.
const defaultPageSize = 2

func (svc *service) ListCryptoKeyVersions(ctx context.Context, req *kmspb.ListCryptoKeyVersionsRequest) (*kmspb.ListCryptoKeyVersionsResponse, error) {
	s := svc.s
	if _, err := s.enter(ctx, func(c *Calls) { c.ListCryptoKeyVersions++ }, "cloudkms.cryptoKeyVersions.list", req.GetParent()); err != nil {
		return nil, err
	}
	if !cryptoKeyName.MatchString(req.GetParent()) {
		return nil, status.Errorf(codes.InvalidArgument, "Resource name [%s] does not represent a valid CryptoKey.", req.GetParent())
	}
	var only kmspb.CryptoKeyVersion_CryptoKeyVersionState // zero: any state
	switch strings.ReplaceAll(req.GetFilter(), " ", "") {
	case "":
	case "state=ENABLED":
		only = kmspb.CryptoKeyVersion_ENABLED
	default:
		return nil, status.Errorf(codes.InvalidArgument, "fake cloud kms: unsupported filter %q (only \"state=ENABLED\")", req.GetFilter())
	}
	offset := 0
	if t := req.GetPageToken(); t != "" {
		var err error
		if offset, err = strconv.Atoi(t); err != nil || offset < 0 {
			return nil, status.Errorf(codes.InvalidArgument, "Invalid page token %q.", t)
		}
	}
	size := int(req.GetPageSize())
	if size <= 0 {
		size = defaultPageSize
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	exists := false
	for name, v := range s.versions {
		if m := versionName.FindStringSubmatch(name); m == nil || m[1] != req.GetParent() {
			continue
		}
		exists = true
		if only == 0 || v.state == only {
			names = append(names, name)
		}
	}
	if !exists {
		return nil, status.Errorf(codes.NotFound, "CryptoKey %s not found.", req.GetParent())
	}
	slices.Sort(names) // by name, as strings: "…/10" before "…/9"
	resp := &kmspb.ListCryptoKeyVersionsResponse{TotalSize: int32(len(names))}
	for i := offset; i < len(names) && i < offset+size; i++ {
		v := s.versions[names[i]]
		resp.CryptoKeyVersions = append(resp.CryptoKeyVersions, &kmspb.CryptoKeyVersion{
			Name:            names[i],
			State:           v.state,
			Algorithm:       v.alg,
			ProtectionLevel: kmspb.ProtectionLevel_SOFTWARE,
		})
	}
	if offset+size < len(names) {
		resp.NextPageToken = strconv.Itoa(offset + size)
	}
	return resp, nil
}

func crc32c(b []byte) int64 {
	return int64(crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}
