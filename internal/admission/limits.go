package admission

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
)

// Defaults of Limits. They bound the work one review and the process take on,
// and are checked before any key-service call.
const (
	// DefaultMaxValues is the most JWE values one Secret may hold: each
	// can cost a key-service call, and 256 of them, 32 at a time, fit in
	// the request timeout even against a remote key service.
	DefaultMaxValues = 256
	// DefaultMaxJWEBytes is the most bytes of JWE values one review may
	// carry: the 1 MiB the apiserver stores in one Secret.
	DefaultMaxJWEBytes = 1 << 20
	// DefaultMaxReviews is the most Secret reviews in flight in the process.
	// Past it a review is refused at once with 429 rather than queued
	// past the apiserver's timeout.
	DefaultMaxReviews = 64
	// retryAfterSeconds is the wait a 429 asks for. The apiserver passes it
	// on as Retry-After, which client-go (kubectl, Helm, controllers)
	// honours by retrying.
	retryAfterSeconds = 1
)

// keepParsed is how many values of a Secret stay parsed from the scope check
// to their decryption. Parsing again costs about a twentieth of an RSA-2048
// decrypt; keeping a parsed value costs several times its size.
const keepParsed = 8

// Limits bound the work of one review and of the process. Zero fields take
// the defaults.
type Limits struct {
	// MaxValues is the most JWE values one Secret may hold.
	MaxValues int
	// MaxRecipients is the most recipients one JWE value may have, at most
	// jwe.RecipientsCeiling; zero means jwe.MaxRecipients.
	MaxRecipients int
	// MaxJWEBytes is the most bytes the JWE values of one review may add
	// up to.
	MaxJWEBytes int
	// MaxReviews is the most Secret reviews in flight in the process.
	MaxReviews int
}

func (l Limits) withDefaults() Limits {
	orDefault := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	orDefault(&l.MaxValues, DefaultMaxValues)
	orDefault(&l.MaxRecipients, jwe.MaxRecipients)
	orDefault(&l.MaxJWEBytes, DefaultMaxJWEBytes)
	orDefault(&l.MaxReviews, DefaultMaxReviews)
	l.MaxRecipients = min(l.MaxRecipients, jwe.RecipientsCeiling)
	return l
}

// parseValues parses and scope-checks the JWE values of data in data-key
// order. Both are cheap and need no key service, so a value copied to the
// wrong place, or a Secret past a limit, never reaches one. Past the
// per-review limits it stops and returns that one failure.
func (r *Reviewer) parseValues(data map[string][]byte, namespace, name string) ([]*value, []*valueError) {
	var values []*value
	var errs []*valueError
	var n, size int
	for _, key := range slices.Sorted(maps.Keys(data)) {
		v := data[key]
		obj, err := r.parse.Parse(v)
		if errors.Is(err, jwe.ErrNotJWE) {
			continue
		}
		n++
		size += len(v)
		switch {
		case n > r.limits.MaxValues:
			return nil, []*valueError{{key: key, code: http.StatusBadRequest, err: fmt.Errorf(
				"the Secret has more than %d JWE values, the most the webhook takes in one Secret (--max-values-per-secret); split it", r.limits.MaxValues)}}
		case size > r.limits.MaxJWEBytes:
			return nil, []*valueError{{key: key, code: http.StatusBadRequest, err: fmt.Errorf(
				"the Secret's JWE values add up to more than %d bytes, the most the webhook takes in one review (--max-jwe-bytes); split it", r.limits.MaxJWEBytes)}}
		}
		if err != nil {
			errs = append(errs, &valueError{key: key, code: http.StatusBadRequest, err: err})
			continue
		}
		if err := obj.Scope.Check(namespace, name); err != nil {
			errs = append(errs, &valueError{key: key, code: http.StatusForbidden, err: err})
			continue
		}
		scope := obj.Scope.Kind()
		if len(values) >= keepParsed {
			// The rest are parsed again when a worker takes them, so that
			// a Secret of many values does not hold every parsed value
			// (several times the value's size) at once.
			obj = nil
		}
		values = append(values, &value{key: key, raw: v, obj: obj, scope: scope})
	}
	return values, errs
}
