// Package admission turns an AdmissionReview for a Secret into a response
// whose JSONPatch replaces each JWE value in data with its plaintext. It does
// no I/O of its own: key services are reached through the Unwrapper.
package admission

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
)

// Audit annotation keys. The apiserver prefixes them with the webhook's name.
// They carry counts and key IDs only.
const (
	AuditDecrypted = "decrypted-values"
	AuditKeyIDs    = "key-ids"
	AuditSkipped   = "skipped"
)

// maxReportedErrors caps how many failing data keys one denial lists.
const maxReportedErrors = 5

// Options tune a Reviewer. Zero fields take the defaults.
type Options struct {
	// Concurrency is how many values of one Secret are unwrapped at once.
	// Zero means 32: enough that a Secret of many values waits about one
	// key-service round trip, not one per value.
	Concurrency int
	Limits
}

// Reviewer answers AdmissionRequests for Secrets.
type Reviewer struct {
	u           Unwrapper
	concurrency int
	limits      Limits
	parse       jwe.Limits
	inFlight    chan struct{} // one token per review in flight
}

// NewReviewer returns a Reviewer that unwraps content keys through u.
func NewReviewer(u Unwrapper, opts Options) *Reviewer {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 32
	}
	l := opts.Limits.withDefaults()
	return &Reviewer{
		u:           u,
		concurrency: opts.Concurrency,
		limits:      l,
		parse:       jwe.Limits{MaxRecipients: l.MaxRecipients},
		inFlight:    make(chan struct{}, l.MaxReviews),
	}
}

// secret is the part of a v1 Secret the webhook reads.
type secret struct {
	Metadata struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Data map[string][]byte `json:"data"`
}

// valueError is a denial for one data key. Its message names the key and the
// reason, never the value.
type valueError struct {
	key  string
	code int32
	err  error // what the denial says
	// cause is what the log says, when it says more than err: which step
	// of the decryption failed. Nil means err.
	cause error
}

func (e *valueError) Error() string { return fmt.Sprintf("data key %q: %v", e.key, e.err) }

// Review decides one request. It allows anything that is not a CREATE or
// UPDATE of a v1 Secret, and Secrets with no JWE values, unchanged.
func (r *Reviewer) Review(ctx context.Context, log *zap.Logger, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	if !isSecretWrite(req) {
		return resp
	}
	select {
	case r.inFlight <- struct{}{}:
		defer func() { <-r.inFlight }()
	default:
		log.Warn("review refused: too many reviews in flight", zap.Int("limit", r.limits.MaxReviews))
		return deny(resp, http.StatusTooManyRequests, fmt.Sprintf("the webhook is overloaded: %d reviews in flight, the most it takes (--max-reviews-in-flight); retry", r.limits.MaxReviews))
	}
	var s secret
	if err := json.Unmarshal(req.Object.Raw, &s); err != nil {
		return deny(resp, http.StatusBadRequest, "object is not a valid v1 Secret")
	}
	if skip, _ := strconv.ParseBool(s.Metadata.Annotations[SkipAnnotation]); skip {
		log.Debug("secret skipped by annotation")
		resp.AuditAnnotations = map[string]string{AuditSkipped: "annotation"}
		return resp
	}
	name := req.Name
	if name == "" {
		name = s.Metadata.Name
	}

	values, errs := r.parseValues(s.Data, req.Namespace, name)
	if len(errs) == 0 {
		errs = r.decrypt(ctx, req.Namespace, values)
	}
	if len(errs) > 0 {
		return refuse(resp, log, errs)
	}
	if len(values) == 0 {
		return resp
	}

	patch := make([]patchOp, len(values))
	var kids []string
	for i, v := range values {
		patch[i] = patchOp{Op: "replace", Path: "/data/" + escapePointer(v.key), Value: v.plaintext}
		if v.used.KeyID != "" && !slices.Contains(kids, v.used.KeyID) {
			kids = append(kids, v.used.KeyID)
		}
		if v.scope == "cluster" {
			resp.Warnings = append(resp.Warnings, fmt.Sprintf("data key %q: value is not bound to a namespace (cluster-wide scope); bind it with jwe-encrypt --namespace", v.key))
		}
		log.Debug("value decrypted", zap.String("dataKey", v.key), zap.String("kid", v.used.KeyID), zap.String("scope", v.scope))
	}
	body, err := json.Marshal(patch)
	if err != nil {
		return deny(resp, http.StatusInternalServerError, "cannot encode the patch")
	}
	slices.Sort(kids)
	pt := admissionv1.PatchTypeJSONPatch
	resp.Patch = body
	resp.PatchType = &pt
	resp.AuditAnnotations = map[string]string{
		AuditDecrypted: strconv.Itoa(len(values)),
		AuditKeyIDs:    strings.Join(kids, ","),
	}
	return resp
}

// value is one JWE value of a Secret on its way to plaintext.
type value struct {
	key   string
	raw   []byte      // the value as the Secret holds it
	obj   *jwe.Object // raw parsed; nil when it is to be parsed again
	scope string      // obj.Scope.Kind()

	used      jwe.Recipient
	plaintext []byte
}

// decrypt unwraps and decrypts values concurrently, at most r.concurrency at
// a time, and returns the failures in data-key order.
func (r *Reviewer) decrypt(ctx context.Context, namespace string, values []*value) []*valueError {
	errs := make([]*valueError, len(values))
	u := unwrapper{u: r.u, namespace: namespace}
	one := func(i int, v *value) error {
		obj := v.obj
		v.obj = nil // the parsed value is garbage once decrypted
		if obj == nil {
			var err error
			if obj, err = r.parse.Parse(v.raw); err != nil {
				errs[i] = &valueError{key: v.key, code: http.StatusBadRequest, err: err}
				return nil
			}
		}
		pt, used, err := obj.Decrypt(ctx, u)
		if err != nil {
			code, reported := failure(obj, err)
			errs[i] = &valueError{key: v.key, code: code, err: reported, cause: err}
			return nil
		}
		v.plaintext, v.used = pt, used
		return nil
	}
	if len(values) == 1 {
		_ = one(0, values[0]) // most Secrets: no goroutine to start and wake
	} else {
		var g errgroup.Group
		g.SetLimit(r.concurrency)
		for i, v := range values {
			g.Go(func() error { return one(i, v) })
		}
		_ = g.Wait()
	}
	return slices.DeleteFunc(errs, func(e *valueError) bool { return e == nil })
}

// unwrapper is the keyring as a jwe.KeyUnwrapper for one namespace.
type unwrapper struct {
	u         Unwrapper
	namespace string
}

func (u unwrapper) Unwrap(ctx context.Context, r jwe.Recipient) ([]byte, error) {
	return u.u.Unwrap(ctx, u.namespace, r)
}

type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value []byte `json:"value"`
}

// escapePointer escapes a data key for a JSON Pointer (RFC 6901): "~"
// first, so that the "~" of "~1" is not escaped again.
func escapePointer(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func isSecretWrite(req *admissionv1.AdmissionRequest) bool {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return false
	}
	return req.Kind.Group == "" && req.Kind.Version == "v1" && req.Kind.Kind == "Secret"
}
