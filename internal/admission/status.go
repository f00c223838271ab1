package admission

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"go.uber.org/zap"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms"
)

// errDoesNotDecrypt is the one answer for a value whose content key a
// selected key did not unwrap and for one whose content does not
// authenticate: telling them apart would make the webhook an oracle on the
// key-unwrap step (RFC 7516 section 11.5).
var errDoesNotDecrypt = errors.New("value does not decrypt: the key does not open it, or the value was modified")

// failure returns the code and the error to report for a value that did not
// decrypt. Its message names the reason, never the value.
func failure(obj *jwe.Object, err error) (int32, error) {
	switch {
	case errors.Is(err, jwe.ErrDecrypt), errors.Is(err, kms.ErrUnwrapFailed):
		if kids := obj.KeyIDs(); len(kids) > 0 {
			return http.StatusBadRequest, fmt.Errorf("kid %s: %w", strings.Join(quoteAll(kids), ", "), errDoesNotDecrypt)
		}
		return http.StatusBadRequest, errDoesNotDecrypt
	case errors.Is(err, kms.ErrOverloaded):
		return http.StatusTooManyRequests, fmt.Errorf("the webhook is overloaded, retry: %w", err)
	case errors.Is(err, jwe.ErrKeyMismatch), errors.Is(err, kms.ErrNamespaceNotAllowed):
		return http.StatusForbidden, err
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusGatewayTimeout, err
	default:
		return http.StatusServiceUnavailable, err
	}
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = fmt.Sprintf("%q", v)
	}
	return out
}

// reasons are the metav1.StatusReason of each code a denial uses.
var reasons = map[int32]metav1.StatusReason{
	http.StatusBadRequest:            metav1.StatusReasonBadRequest,
	http.StatusForbidden:             metav1.StatusReasonForbidden,
	http.StatusRequestEntityTooLarge: metav1.StatusReasonRequestEntityTooLarge,
	http.StatusTooManyRequests:       metav1.StatusReasonTooManyRequests,
	http.StatusInternalServerError:   metav1.StatusReasonInternalError,
	http.StatusServiceUnavailable:    metav1.StatusReasonServiceUnavailable,
	http.StatusGatewayTimeout:        metav1.StatusReasonTimeout,
}

// severity orders the codes of a review's failures: the review is answered
// with the most severe one, so that a key service that is down makes the
// review an error (503) whichever data key it failed on.
func severity(code int32) int {
	switch code {
	case http.StatusServiceUnavailable:
		return 4
	case http.StatusGatewayTimeout:
		return 3
	case http.StatusTooManyRequests:
		return 2
	case http.StatusInternalServerError:
		return 1
	}
	return 0
}

// sortFailures puts errs in the order a denial reports them: most severe
// code first, then data-key order.
func sortFailures(errs []*valueError) {
	slices.SortStableFunc(errs, func(a, b *valueError) int {
		if c := cmp.Compare(severity(b.code), severity(a.code)); c != 0 {
			return c
		}
		return cmp.Compare(a.key, b.key)
	})
}

func denialMessage(errs []*valueError) string {
	msgs := make([]string, 0, maxReportedErrors+1)
	for i, e := range errs {
		if i == maxReportedErrors {
			msgs = append(msgs, fmt.Sprintf("and %d more", len(errs)-i))
			break
		}
		msgs = append(msgs, e.Error())
	}
	return strings.Join(msgs, "; ")
}

func deny(resp *admissionv1.AdmissionResponse, code int32, msg string) *admissionv1.AdmissionResponse {
	resp.Allowed = false
	reason, ok := reasons[code]
	if !ok {
		reason = metav1.StatusReasonUnknown
	}
	resp.Result = &metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    code,
		Reason:  reason,
		Message: msg,
	}
	if code == http.StatusTooManyRequests {
		// The apiserver passes this on as a Retry-After header, which
		// client-go (kubectl, Helm, controllers) honours by retrying.
		resp.Result.Details = &metav1.StatusDetails{RetryAfterSeconds: retryAfterSeconds}
	}
	return resp
}

// refuse denies a review for errs, with one log line however many values
// failed: the count, the data keys of the first few, and the first cause.
func refuse(resp *admissionv1.AdmissionResponse, log *zap.Logger, errs []*valueError) *admissionv1.AdmissionResponse {
	sortFailures(errs)
	keys := make([]string, 0, min(len(errs), maxReportedErrors))
	for _, e := range errs[:cap(keys)] {
		keys = append(keys, e.key)
	}
	first := errs[0]
	cause := first.cause
	if cause == nil {
		cause = first.err
	}
	log.Info("values refused", zap.Int("count", len(errs)), zap.Strings("dataKeys", keys),
		zap.Int32("code", first.code), zap.String("firstDataKey", first.key), zap.NamedError("firstError", cause))
	return deny(resp, first.code, denialMessage(errs))
}
