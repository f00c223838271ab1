package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"time"

	"go.uber.org/zap"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jwe-webhook/jwe-webhook/internal/admission"
)

// mutate answers an AdmissionReview. HTTP statuses:
//
//   - 415 when Content-Type is not application/json;
//   - 413 when the body is larger than cfg.MaxRequestBytes;
//   - 400 when the body is empty or not an admission.k8s.io/v1 AdmissionReview
//     with a request;
//   - 200 otherwise, with an AdmissionReview whose response, allowed or denied,
//     comes from the Reviewer with the request's uid.
//
// The request body and the patch are never logged: they hold ciphertexts in,
// plaintexts out.
func (s *Server) mutate(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	fail := func(status int, reason string, err error) {
		s.log.Info("admission review rejected", zap.Int("status", status),
			zap.String("reason", reason), zap.Error(err), zap.Duration("duration", time.Since(start)))
		http.Error(w, reason, status)
	}

	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		fail(http.StatusUnsupportedMediaType, "content type must be application/json", err)
		return
	}
	body, err := readBody(w, r, s.cfg.MaxRequestBytes)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		fail(http.StatusRequestEntityTooLarge, "request body too large", err)
		return
	case err != nil:
		fail(http.StatusBadRequest, "read request body", err)
		return
	}
	review, err := admission.Decode(body)
	if err != nil {
		fail(http.StatusBadRequest, "invalid AdmissionReview: "+err.Error(), nil)
		return
	}

	req := review.Request
	log := s.log.With(
		zap.String("uid", string(req.UID)),
		zap.String("namespace", req.Namespace),
		zap.String("name", req.Name),
		zap.String("operation", string(req.Operation)),
		zap.Bool("dryRun", req.DryRun != nil && *req.DryRun),
	)
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	resp := s.rev.Review(ctx, log, req)
	if resp == nil {
		resp = &admissionv1.AdmissionResponse{Result: &metav1.Status{
			Status: metav1.StatusFailure, Code: http.StatusInternalServerError, Reason: metav1.StatusReasonInternalError,
			Message: "webhook returned no response",
		}}
	}
	resp.UID = req.UID

	out, err := json.Marshal(admission.Respond(resp))
	if err != nil {
		log.Error("encode admission response", zap.Error(err))
		http.Error(w, "encode admission response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if _, err := w.Write(out); err != nil {
		log.Warn("write admission response", zap.Error(err))
	}

	fields := []zap.Field{
		zap.Bool("allowed", resp.Allowed),
		zap.Bool("patched", len(resp.Patch) > 0),
		zap.Duration("duration", time.Since(start)),
	}
	if !resp.Allowed && resp.Result != nil {
		fields = append(fields, zap.String("reason", resp.Result.Message))
	}
	log.Info("admission review", fields...)
}

// readBody reads r's body, at most limit bytes. When the client announced
// the length, the buffer is allocated once at that size: io.ReadAll's
// doubling would leave up to twice the body allocated while the review is
// decoded.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	if n := r.ContentLength; n > 0 && n <= limit {
		buf.Grow(int(n) + bytes.MinRead) // ReadFrom wants MinRead free to read on
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	return buf.Bytes(), err
}
