package server

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"go.uber.org/zap"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestMutateNoResponse checks a Reviewer that returns nothing gives the
// apiserver a denial with code 500 and reason InternalError for the uid.
func TestMutateNoResponse(t *testing.T) {
	silent := reviewerFunc(func(context.Context, *zap.Logger, *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		return nil
	})
	ts := startServer(t, silent, Config{})
	resp, body := ts.do(t, "POST", "/mutate", "application/json", reviewBody(t, "u-nil"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		t.Fatal(err)
	}
	r := review.Response
	if r == nil || r.UID != "u-nil" || r.Allowed || r.Result == nil {
		t.Fatalf("response %s, want a denial for uid u-nil", body)
	}
	if r.Result.Code != http.StatusInternalServerError || r.Result.Reason != metav1.StatusReasonInternalError {
		t.Errorf("status %d %q, want 500 %q", r.Result.Code, r.Result.Reason, metav1.StatusReasonInternalError)
	}
}
