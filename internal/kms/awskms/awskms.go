// Package awskms is the key service for an AWS KMS asymmetric RSA key with key
// usage ENCRYPT_DECRYPT (key spec RSA_2048, RSA_3072 or RSA_4096). The private
// key stays in AWS KMS: Unwrap sends a JWE's encrypted key to Decrypt with
// RSAES_OAEP_SHA_256 for RSA-OAEP-256 or RSAES_OAEP_SHA_1 for RSA-OAEP.
//
// A key is named by its key ARN, which is also the kid values carry. Aliases
// are for people: the custodian CLI resolves one to the key ARN it points to
// when it encrypts, and the webhook never takes an alias as a kid, because an
// alias can be moved to another key. AWS KMS does not rotate asymmetric keys:
// a new key is a new ARN, configured next to the old one.
//
// The webhook's identity needs kms:Decrypt and kms:GetPublicKey on the key:
// Unwrap reads the key's algorithms once with GetPublicKey, as the Cloud KMS
// provider does. Credentials come from the SDK's default chain (IRSA or EKS Pod
// Identity in a cluster, environment variables or a profile elsewhere); the
// region of each call is the key ARN's.
package awskms

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"

	"github.com/jwe-webhook/jwe-webhook/internal/kms"
)

// ErrPermissionDenied means AWS KMS refused the call: the webhook's identity
// lacks kms:Decrypt or kms:GetPublicKey on the key, or its credentials are not
// valid.
var ErrPermissionDenied = errors.New("aws kms: permission denied")

// ErrUnavailable means AWS KMS could not be reached or failed on its side
// (after the client's retries).
var ErrUnavailable = errors.New("aws kms: unavailable")

// Client is the process's one AWS KMS client, shared by all its Keys. It is
// safe for concurrent use.
type Client struct {
	kms *awskms.Client
}

// Option configures NewClient.
type Option func(*settings)

type settings struct {
	endpoint   string
	caFile     string
	region     string
	accessKey  string
	secretKey  string
	maxBackoff time.Duration
}

// WithEndpoint sends every call to endpoint, an http(s) URL such as a VPC
// endpoint or an emulator, instead of the region's public endpoint. Plain
// http is allowed to a loopback address only.
func WithEndpoint(endpoint string) Option { return func(s *settings) { s.endpoint = endpoint } }

// WithCAFile trusts the PEM certificates in file (as well as the system's)
// for the endpoint's TLS certificate.
func WithCAFile(file string) Option { return func(s *settings) { s.caFile = file } }

// WithRegion sets the region of calls that name a key without an ARN (an
// alias name or a key ID, which only the custodian CLI uses). Without it the
// default chain's region (AWS_REGION, the profile) applies.
func WithRegion(region string) Option { return func(s *settings) { s.region = region } }

// WithStaticCredentials signs calls with a fixed access key instead of the
// default credential chain. It is for emulators and tests.
func WithStaticCredentials(accessKeyID, secretAccessKey string) Option {
	return func(s *settings) { s.accessKey, s.secretKey = accessKeyID, secretAccessKey }
}

// retryAttempts is how many times a call is made when the service is
// unavailable or throttles.
const retryAttempts = 3

// NewClient loads the AWS configuration (credentials, and a default region
// for names that are not ARNs) and returns a client. It makes no call: a
// missing credential shows on the first call.
func NewClient(ctx context.Context, opts ...Option) (*Client, error) {
	s := settings{maxBackoff: 200 * time.Millisecond}
	for _, o := range opts {
		o(&s)
	}
	load := []func(*config.LoadOptions) error{
		// The SDK's default retries back off for up to 20 s, longer than an
		// admission request lives, and its retry quota fails calls of its
		// own accord during an outage. Retry twice, briefly, within the
		// caller's context.
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = retryAttempts
				o.MaxBackoff = s.maxBackoff
				o.RateLimiter = ratelimit.None
			})
		}),
	}
	if s.region != "" {
		load = append(load, config.WithRegion(s.region))
	}
	if s.accessKey != "" || s.secretKey != "" {
		load = append(load, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(s.accessKey, s.secretKey, "")))
	}
	if s.endpoint != "" {
		if err := checkEndpoint(s.endpoint); err != nil {
			return nil, err
		}
		load = append(load, config.WithBaseEndpoint(s.endpoint))
	}
	if s.caFile != "" {
		pem, err := os.ReadFile(s.caFile)
		if err != nil {
			return nil, fmt.Errorf("aws kms: CA file: %w", err)
		}
		load = append(load, config.WithCustomCABundle(bytes.NewReader(pem)))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("aws kms: load configuration: %w", err)
	}
	return &Client{kms: awskms.NewFromConfig(cfg)}, nil
}

// checkEndpoint accepts an https URL, or an http one to a loopback address.
func checkEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("aws kms: endpoint %q is not an http(s) URL", endpoint)
	}
	if u.Scheme == "http" {
		host := u.Hostname()
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("aws kms: endpoint %q: plain http is allowed to loopback only", endpoint)
		}
	}
	return nil
}

// newCallError describes err, returned by the call op on key.
func newCallError(ctx context.Context, op, key string, err error) error {
	return kms.NewCallError(ctx, "aws kms", op, key, err, ErrUnavailable, classify)
}

// classify says what an AWS KMS error answer means.
func classify(err error) (string, []error, bool) {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return "", nil, false
	}
	what := apiErr.ErrorCode() + ": " + kms.ServiceMessage(apiErr.ErrorMessage())
	switch code := apiErr.ErrorCode(); {
	case code == "AccessDeniedException" || code == "UnrecognizedClientException" ||
		code == "InvalidSignatureException" || code == "ExpiredTokenException" ||
		code == "IncompleteSignature" || code == "MissingAuthenticationToken":
		return "permission denied (check the webhook's IAM role and the key policy): " + what, []error{ErrPermissionDenied}, true
	case code == "DependencyTimeoutException":
		return what, []error{ErrUnavailable, context.DeadlineExceeded}, true
	case apiErr.ErrorFault() == smithy.FaultServer || httpStatus(err) >= 500 ||
		code == "ThrottlingException" || code == "KMSInternalException":
		return what, []error{ErrUnavailable}, true
	case code == "NotFoundException":
		// The key does not exist (in the ARN's region); that will not
		// change in seconds.
		return what, []error{kms.ErrKeyNotFound}, true
	case code == "DisabledException" || code == "KMSInvalidStateException":
		return what + " (is the key enabled?)", nil, true
	}
	return what, nil, true
}

// httpStatus returns the HTTP status of the response err came with, or 0.
func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// isAPIError reports whether err is an AWS KMS error with one of codes.
func isAPIError(err error, codes ...string) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && slices.Contains(codes, apiErr.ErrorCode())
}
