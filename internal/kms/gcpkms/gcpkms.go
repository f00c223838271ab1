// Package gcpkms is the key service for a Cloud KMS asymmetric decryption key
// (purpose ASYMMETRIC_DECRYPT, algorithm RSA_DECRYPT_OAEP_*_SHA256 for
// RSA-OAEP-256 or RSA_DECRYPT_OAEP_*_SHA1 for RSA-OAEP). The private key stays
// in Cloud KMS: Unwrap sends a JWE's encrypted key to AsymmetricDecrypt and
// checks the CRC32C checksums of what goes out and what comes back.
//
// The webhook's identity needs roles/cloudkms.cryptoKeyDecrypter to decrypt
// and roles/cloudkms.publicKeyViewer, because Unwrap reads each version's
// algorithm with GetPublicKey. The custodian CLI, naming a crypto key rather
// than a version, also lists versions (cloudkms.cryptoKeyVersions.list).
package gcpkms

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"time"
	"unicode"

	cloudkms "cloud.google.com/go/kms/apiv1"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/jwe-webhook/jwe-webhook/internal/kms"
)

// ErrPermissionDenied means Cloud KMS refused the call because the caller's
// identity lacks a permission on the key (gRPC PermissionDenied).
var ErrPermissionDenied = errors.New("gcp kms: permission denied")

// Endpoint says how to reach the Cloud KMS API. The zero Endpoint is the
// public endpoint with Application Default Credentials.
type Endpoint struct {
	// Address (host:port) overrides the API endpoint, e.g. a Private Service
	// Connect address or an in-process test server.
	Address string
	// Insecure talks plaintext gRPC without credentials. Callers allow it
	// only for a loopback Address, in tests.
	Insecure bool
}

// ClientOptions are the client library options that reach e, for NewClient.
func (e Endpoint) ClientOptions() []option.ClientOption {
	var opts []option.ClientOption
	if e.Address != "" {
		opts = append(opts, option.WithEndpoint(e.Address))
	}
	if e.Insecure {
		opts = append(opts, option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	}
	return opts
}

// Client is the process's one connection to the Cloud KMS API, shared by all
// its Keys. It is safe for concurrent use.
type Client struct {
	kms  *cloudkms.KeyManagementClient
	call []gax.CallOption // on every call
}

// NewClient connects to Cloud KMS. Without options it uses Application Default
// Credentials (Workload Identity on GKE) and the public endpoint. Tests point
// it at an in-process server with option.WithEndpoint,
// option.WithoutAuthentication and insecure transport credentials, or with
// option.WithGRPCConn.
func NewClient(ctx context.Context, opts ...option.ClientOption) (*Client, error) {
	c, err := cloudkms.NewKeyManagementClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("gcp kms: new client: %w", err)
	}
	return &Client{kms: c, call: []gax.CallOption{gax.WithRetry(newRetryer)}}, nil
}

// Close closes the connection. Keys of c must not be used afterwards.
func (c *Client) Close() error { return c.kms.Close() }

// retryAttempts is how many times a call is made when the service is
// unavailable.
const retryAttempts = 3

// newRetryer retries Unavailable and DeadlineExceeded twice, after jittered
// pauses of up to 100ms and 200ms, and never past the caller's context. It replaces the client
// library's default, which keeps retrying for 60 seconds, longer than an
// admission request lives, and then reports only that the deadline passed.
func newRetryer() gax.Retryer {
	return &boundedRetryer{
		left: retryAttempts - 1,
		next: gax.OnCodes([]codes.Code{codes.Unavailable, codes.DeadlineExceeded},
			gax.Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2}),
	}
}

type boundedRetryer struct {
	left int
	next gax.Retryer
}

func (r *boundedRetryer) Retry(err error) (time.Duration, bool) {
	if r.left == 0 {
		return 0, false
	}
	r.left--
	return r.next.Retry(err)
}

// Name shapes, for messages.
const (
	cryptoKeyShape  = "projects/P/locations/L/keyRings/R/cryptoKeys/K"
	versionShape    = cryptoKeyShape + "/cryptoKeyVersions/N"
	versionsSegment = "/cryptoKeyVersions/"
)

// nameLabels are the collection IDs of a key version name, in order.
var nameLabels = [...]string{"projects", "locations", "keyRings", "cryptoKeys", "cryptoKeyVersions"}

// parseName checks that name is a crypto key or a key version name and
// reports which.
func parseName(name string) (isVersion bool, err error) {
	parts := strings.Split(name, "/")
	if len(parts) != 8 && len(parts) != 10 {
		return false, fmt.Errorf("gcp kms: key name %q is not a crypto key (%s) or a key version (%s)", name, cryptoKeyShape, versionShape)
	}
	for i := 0; i < len(parts); i += 2 {
		label, id := parts[i], parts[i+1]
		if label != nameLabels[i/2] {
			return false, fmt.Errorf("gcp kms: key name %q has %q where %q belongs (want %s or %s)", name, label, nameLabels[i/2], cryptoKeyShape, versionShape)
		}
		if !validID(id) {
			return false, fmt.Errorf("gcp kms: key name %q: %s ID %q is empty or has characters other than letters, digits, '_', '-', '.' and ':'", name, label, id)
		}
	}
	if len(parts) == 10 {
		if _, ok := versionNumber(parts[9]); !ok {
			return false, fmt.Errorf("gcp kms: key name %q: key version %q is not a positive number", name, parts[9])
		}
	}
	return len(parts) == 10, nil
}

// validID reports whether id is a plausible resource ID. Project IDs may be
// domain-scoped ("example.com:project"), hence '.' and ':'.
func validID(id string) bool {
	return id != "" && strings.IndexFunc(id, func(r rune) bool {
		return r > unicode.MaxASCII || !(r == '_' || r == '-' || r == '.' || r == ':' ||
			'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
	}) < 0
}

// versionNumber parses a key version ID: a decimal number from 1 up, without
// leading zeros, as Cloud KMS writes it.
func versionNumber(id string) (int, bool) {
	n, err := strconv.Atoi(id)
	if err != nil || n < 1 || strconv.Itoa(n) != id {
		return 0, false
	}
	return n, true
}

// versionOf returns the number of name when it is a key version of cryptoKey.
func versionOf(cryptoKey, name string) (int, bool) {
	id, ok := strings.CutPrefix(name, cryptoKey+versionsSegment)
	if !ok {
		return 0, false
	}
	return versionNumber(id)
}

// crc32c is the checksum Cloud KMS uses for integrity verification.
func crc32c(b []byte) int64 {
	return int64(crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

// newCallError describes err, returned by the call op on resource.
func newCallError(ctx context.Context, op, resource string, err error) error {
	return kms.NewCallError(ctx, "gcp kms", op, resource, err, nil, classify)
}

// classify says what a gRPC status means; every error of the client library
// carries one, so there is no transport failure left for NewCallError.
func classify(err error) (string, []error, bool) {
	st := status.Convert(err)
	what := codeText(st.Code()) + ": " + kms.ServiceMessage(st.Message())
	switch st.Code() {
	case codes.DeadlineExceeded:
		// The service (or the transport) gave up first; for the caller it is
		// the same timeout as its own context ending.
		return what, []error{context.DeadlineExceeded}, true
	case codes.PermissionDenied:
		return what, []error{ErrPermissionDenied}, true
	case codes.NotFound:
		// The key or version does not exist; that will not change in seconds.
		return what, []error{kms.ErrKeyNotFound}, true
	}
	return what, nil, true
}

// codeText says in words what a gRPC code means for a key service call.
func codeText(c codes.Code) string {
	var b strings.Builder
	for i, r := range c.String() { // "PermissionDenied" → "permission denied"
		if unicode.IsUpper(r) && i > 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	switch c {
	case codes.FailedPrecondition:
		b.WriteString(" (is the key version enabled?)")
	case codes.PermissionDenied, codes.Unauthenticated:
		b.WriteString(" (check the webhook's identity and its Cloud KMS roles)")
	}
	return b.String()
}
