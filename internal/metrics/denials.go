package metrics

import (
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// reasonsByCode name a refusal by its status code when its Reason is not one
// of Kubernetes' StatusReason values.
var reasonsByCode = map[int32]metav1.StatusReason{
	http.StatusBadRequest:            metav1.StatusReasonBadRequest,
	http.StatusUnauthorized:          metav1.StatusReasonUnauthorized,
	http.StatusForbidden:             metav1.StatusReasonForbidden,
	http.StatusRequestEntityTooLarge: metav1.StatusReasonRequestEntityTooLarge,
	http.StatusUnprocessableEntity:   metav1.StatusReasonInvalid,
	http.StatusTooManyRequests:       metav1.StatusReasonTooManyRequests,
	http.StatusInternalServerError:   metav1.StatusReasonInternalError,
	http.StatusServiceUnavailable:    metav1.StatusReasonServiceUnavailable,
	http.StatusGatewayTimeout:        metav1.StatusReasonTimeout,
}

// reasonUnknown labels a refusal whose reason and code say nothing known
// (metav1.StatusReasonUnknown is the empty string).
const reasonUnknown = "Unknown"

// denialReason is the "reason" label of a refused review: its Status
// Reason when that is one of Kubernetes' values, else the value its code
// stands for, else "Unknown". The label never carries the message, so it
// has a bounded set of values whatever the response says.
func denialReason(resp *admissionv1.AdmissionResponse) string {
	if resp == nil || resp.Result == nil {
		return reasonUnknown
	}
	for _, r := range reasonsByCode {
		if resp.Result.Reason == r {
			return string(r)
		}
	}
	if r, ok := reasonsByCode[resp.Result.Code]; ok {
		return string(r)
	}
	return reasonUnknown
}
