package admission_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"go.uber.org/zap"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jwe-webhook/jwe-webhook/internal/admission"
	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/testkit"
)

// FuzzReview decodes any body as the server does and reviews what decodes,
// with a keyring of local keys. A review answers for the request's uid; a
// denial has an error status and echoes neither a JWE value nor a
// plaintext; a patch applies to the object. The seed corpus (the reviews
// below plus testdata/fuzz) runs in every go test.
func FuzzReview(f *testing.F) {
	fx := newFixture(f)
	strict := jwe.Scope{Namespace: "team-a", Name: "db"}
	for _, s := range []secretSpec{
		{ns: "team-a", name: "db", data: map[string][]byte{"pw": encrypt(f, fx.rsa, secrets[0], strict), "user": []byte("admin")}},
		{ns: "team-a", name: "db", data: map[string][]byte{"a/b~c": encrypt(f, fx.ec, secrets[1], jwe.Scope{Namespace: "team-a"})}},
		{ns: "team-a", name: "other", data: map[string][]byte{"pw": encrypt(f, fx.rsa, secrets[2], strict)}},
		{ns: "prod", name: "db", data: map[string][]byte{"pw": encrypt(f, fx.ec, secrets[3], jwe.Scope{})}},
		{ns: "team-a", name: "db", data: map[string][]byte{"pw": flipCiphertextBit(f, encrypt(f, fx.rsa, secrets[0], strict))}},
		{ns: "team-a", name: "db", op: admissionv1.Update, annotations: map[string]string{admission.SkipAnnotation: "true"},
			data: map[string][]byte{"pw": encrypt(f, fx.stranger, secrets[0], jwe.Scope{})}},
	} {
		body, err := json.Marshal(admissionv1.AdmissionReview{
			TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
			Request:  s.request(f),
		})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"CREATE","kind":{"version":"v1","kind":"Secret"},"object":{"data":{"k":"LiIuLi4="}}}}`))
	rev := admission.NewReviewer(fx.keyring, admission.Options{Concurrency: 2})
	f.Fuzz(func(t *testing.T, body []byte) {
		review, err := admission.Decode(body)
		if err != nil {
			return
		}
		req := review.Request
		resp := rev.Review(context.Background(), zap.NewNop(), req)
		if resp.UID != req.UID {
			t.Fatalf("response uid %q for request uid %q", resp.UID, req.UID)
		}
		if !resp.Allowed {
			if resp.Result == nil || resp.Result.Code < 400 || resp.Result.Code > 599 || resp.Patch != nil {
				t.Fatalf("denial without an error status, or with a patch: %+v", resp)
			}
			checkQuiet(t, req, resp.Result.Message)
			return
		}
		checkQuiet(t, req, strings.Join(resp.Warnings, "\n"))
		if resp.Patch == nil {
			return
		}
		p, err := jsonpatch.DecodePatch(resp.Patch)
		if err != nil {
			t.Fatalf("patch does not decode: %v", err)
		}
		if _, err := p.Apply(req.Object.Raw); err != nil {
			t.Fatalf("patch does not apply to the object: %v\npatch %s\nobject %s", err, resp.Patch, req.Object.Raw)
		}
	})
}

// checkQuiet fails when msg holds a plaintext, a whole JWE value of the
// request's Secret, or a part of a compact one. (The parts of a JSON
// serialization are not looked for: its kids, which a denial names, are
// written in the value as they are.) Parts shorter than 16 bytes are not
// looked for: a fuzzed part may by chance be a word of a fixed message.
func checkQuiet(t *testing.T, req *admissionv1.AdmissionRequest, msg string) {
	t.Helper()
	if found := leaks(msg); len(found) > 0 {
		t.Fatalf("message holds a plaintext: %q", msg)
	}
	var s struct {
		Data map[string][]byte `json:"data"`
	}
	_ = json.Unmarshal(req.Object.Raw, &s)
	for key, v := range s.Data {
		if !jwe.Detect(v) {
			continue
		}
		if strings.Contains(msg, string(v)) || strings.Contains(msg, base64.StdEncoding.EncodeToString(v)) {
			t.Fatalf("message echoes the value of data key %q: %q", key, msg)
		}
		if bytes.HasPrefix(bytes.TrimSpace(v), []byte("{")) {
			continue
		}
		if e := testkit.Echo(msg, v, 2*testkit.MinEcho); e != "" && e != key {
			t.Fatalf("message echoes %q, part of the value of data key %q: %q", e, key, msg)
		}
	}
}
