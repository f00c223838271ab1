package admission_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/zap"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jwe-webhook/jwe-webhook/internal/admission"
	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms"
)

// wantDenial checks resp is a denial with code and reason whose message
// contains each of want and none of values, nor any dot-separated part of
// one, nor a plaintext.
func wantDenial(t *testing.T, resp *admissionv1.AdmissionResponse, code int32, reason metav1.StatusReason, values [][]byte, want ...string) {
	t.Helper()
	if resp.Allowed || resp.Patch != nil || resp.Result == nil {
		t.Fatalf("want a denial, got %+v", resp)
	}
	r := resp.Result
	if r.Code != code || r.Reason != reason || r.Status != metav1.StatusFailure {
		t.Errorf("denial %d %q %q, want %d %q %q", r.Code, r.Reason, r.Status, code, reason, metav1.StatusFailure)
	}
	for _, w := range want {
		if !strings.Contains(r.Message, w) {
			t.Errorf("denial %q does not contain %q", r.Message, w)
		}
	}
	for _, v := range values {
		for _, part := range append(strings.Split(string(v), "."), string(v)) {
			if len(part) >= 8 && strings.Contains(r.Message, part) {
				t.Errorf("denial %q contains (part of) the value", r.Message)
			}
		}
	}
	if l := leaks(r.Message); l != nil {
		t.Errorf("denial leaks %q", l)
	}
}

// keyServiceDown is an Unwrapper whose service for kid is unavailable; other
// keys are the keyring's.
type keyServiceDown struct {
	kr  *kms.Keyring
	kid string
}

func (s keyServiceDown) Unwrap(ctx context.Context, ns string, k jwe.Recipient) ([]byte, error) {
	if k.KeyID == s.kid {
		return nil, fmt.Errorf("unwrap with key %q (gcpkms): rpc error: code = Unavailable", s.kid)
	}
	return s.kr.Unwrap(ctx, ns, k)
}

// TestNoOracle checks a value whose content key does not unwrap and one whose
// content does not authenticate get the same code, reason and message
// (RFC 7516 section 11.5).
func TestNoOracle(t *testing.T) {
	f := newFixture(t)
	strict := jwe.Scope{Namespace: "team-a", Name: "db"}
	wrongKey := func(kid string) []byte {
		out, err := jwe.Encrypt([]byte(secrets[3]), strict, "", jwe.PublicKey{Key: f.stranger.Public(), KeyID: kid})
		if err != nil {
			t.Fatal(err)
		}
		return []byte(out)
	}
	r := admission.NewReviewer(f.keyring, admission.Options{})
	messages := map[string]string{}
	for name, v := range map[string][]byte{
		"wrong EC key":         wrongKey(f.ec.KeyID()),
		"tampered EC content":  flipCiphertextBit(t, encrypt(t, f.ec, secrets[0], strict)),
		"tampered RSA key":     flipEncryptedKeyBit(t, encrypt(t, f.rsa, secrets[1], strict)),
		"tampered RSA content": flipCiphertextBit(t, encrypt(t, f.rsa, secrets[2], strict)),
	} {
		spec := secretSpec{ns: "team-a", name: "db", data: map[string][]byte{"pw": v}}
		resp := r.Review(context.Background(), zap.NewNop(), spec.request(t))
		wantDenial(t, resp, http.StatusBadRequest, metav1.StatusReasonBadRequest, [][]byte{v}, `data key "pw"`, "value does not decrypt")
		if resp.Result != nil {
			messages[name] = regexp.MustCompile(`kid "[^"]*"`).ReplaceAllString(resp.Result.Message, `kid "…"`)
		}
	}
	want := messages["tampered RSA content"]
	for name, m := range messages {
		if m != want {
			t.Errorf("%s: message %q differs from a tampered content's %q", name, m, want)
		}
	}
}

// flipEncryptedKeyBit changes one bit of a compact JWE's encrypted key.
func flipEncryptedKeyBit(t testing.TB, compact []byte) []byte {
	t.Helper()
	parts := strings.Split(string(compact), ".")
	parts[1], parts[3] = parts[3], parts[1]
	swapped := flipCiphertextBit(t, []byte(strings.Join(parts, ".")))
	parts = strings.Split(string(swapped), ".")
	parts[1], parts[3] = parts[3], parts[1]
	return []byte(strings.Join(parts, "."))
}

// TestKeyServiceDownIsAnError checks a review with one value refused (403)
// and one whose key service is down is a 503, in either data-key order, and
// that the 503's reason comes first in the message.
func TestKeyServiceDownIsAnError(t *testing.T) {
	f := newFixture(t)
	down := keyServiceDown{kr: f.keyring, kid: f.rsa.KeyID()}
	r := admission.NewReviewer(down, admission.Options{})
	refused := encrypt(t, f.stranger, secrets[0], jwe.Scope{}) // unknown kid: 403 alone
	unavailable := encrypt(t, f.rsa, secrets[1], jwe.Scope{})
	for _, keys := range [][2]string{{"a", "z"}, {"z", "a"}} {
		t.Run(keys[0]+" refused", func(t *testing.T) {
			spec := secretSpec{ns: "team-a", name: "db", data: map[string][]byte{keys[0]: refused, keys[1]: unavailable}}
			resp := r.Review(context.Background(), zap.NewNop(), spec.request(t))
			wantDenial(t, resp, http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable, [][]byte{refused, unavailable},
				fmt.Sprintf("data key %q: unwrap with key", keys[1]), "Unavailable", fmt.Sprintf("data key %q: no configured key", keys[0]))
			if m := resp.Result.Message; !strings.HasPrefix(m, fmt.Sprintf("data key %q", keys[1])) {
				t.Errorf("message %q does not start with the unavailable key service", m)
			}
		})
	}
}

// TestStatusReasons checks each denial code carries its metav1.StatusReason.
func TestStatusReasons(t *testing.T) {
	f := newFixture(t)
	value := encrypt(t, f.rsa, secrets[0], jwe.Scope{Namespace: "team-a"})
	cases := []struct {
		name   string
		u      admission.Unwrapper
		ns     string
		value  []byte
		code   int32
		reason metav1.StatusReason
		want   string
	}{
		{"bad JWE", f.keyring, "team-a", []byte(b64(`{"alg":"dir","enc":"A256GCM"}`) + "..aXY.Yw.dA"), 400, metav1.StatusReasonBadRequest, "is not allowed"},
		{"scope", f.keyring, "team-b", value, 403, metav1.StatusReasonForbidden, "scope mismatch"},
		{"key service down", keyServiceDown{f.keyring, f.rsa.KeyID()}, "team-a", value, 503, metav1.StatusReasonServiceUnavailable, "Unavailable"},
		{"key service timeout", &service{err: fmt.Errorf("unwrap: %w", context.DeadlineExceeded)}, "team-a", value, 504, metav1.StatusReasonTimeout, "deadline exceeded"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := secretSpec{ns: c.ns, name: "db", data: map[string][]byte{"pw": c.value}}
			resp := admission.NewReviewer(c.u, admission.Options{}).Review(context.Background(), zap.NewNop(), spec.request(t))
			wantDenial(t, resp, c.code, c.reason, [][]byte{c.value}, `data key "pw"`, c.want)
		})
	}
}

// TestOneLogLinePerRefusedReview checks a review with many refused values
// logs one summary line with the count, not one line per value.
func TestOneLogLinePerRefusedReview(t *testing.T) {
	f := newFixture(t)
	data := map[string][]byte{}
	for i := range 40 {
		data[fmt.Sprintf("k%02d", i)] = encrypt(t, f.rsa, secrets[i%len(secrets)], jwe.Scope{Namespace: "team-z"})
	}
	sink := &logSink{}
	spec := secretSpec{ns: "team-a", name: "db", data: data}
	resp := admission.NewReviewer(f.keyring, admission.Options{}).Review(context.Background(), sink.logger(), spec.request(t))
	wantDenial(t, resp, http.StatusForbidden, metav1.StatusReasonForbidden, nil, `data key "k00"`, "and 35 more")
	lines := strings.Split(strings.TrimSpace(sink.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `"count":40`) || !strings.Contains(lines[0], `"firstDataKey":"k00"`) {
		t.Fatalf("want one summary line with the count, got %d:\n%s", len(lines), sink.String())
	}
	if l := leaks(sink.String()); l != nil {
		t.Fatalf("log leaks %q", l)
	}
}

// TestRecipientDenials checks a JSON-serialized value with a malformed or
// ambiguous recipient is refused at parse with 400, never 503, and the key
// service is not called.
func TestRecipientDenials(t *testing.T) {
	f := newFixture(t)
	scope := jwe.Scope{Namespace: "team-a"}
	multi, err := jwe.Encrypt([]byte(secrets[0]), scope, "",
		jwe.PublicKey{Key: f.rsa.Public(), KeyID: f.rsa.KeyID()}, jwe.PublicKey{Key: f.ec.Public(), KeyID: f.ec.KeyID()})
	if err != nil {
		t.Fatal(err)
	}
	// edit returns multi with edit applied to its recipients.
	edit := func(edit func(rs []map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal([]byte(multi), &m); err != nil {
			t.Fatal(err)
		}
		var rs []map[string]any
		for _, r := range m["recipients"].([]any) {
			rs = append(rs, r.(map[string]any))
		}
		edit(rs)
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	cases := []struct {
		name  string
		value []byte
		want  string
	}{
		{"malformed x5c", edit(func(rs []map[string]any) { rs[1]["header"].(map[string]any)["x5c"] = []string{"bm90IGEgY2VydA"} }), `recipient 2 header: parameter "x5c" is malformed`},
		{"malformed jwk", edit(func(rs []map[string]any) { rs[0]["header"].(map[string]any)["jwk"] = map[string]any{"kty": "EC"} }), `recipient 1 header: parameter "jwk" is malformed`},
		{"Header member", edit(func(rs []map[string]any) { rs[0]["Header"] = rs[0]["header"]; delete(rs[0], "header") }), `unknown member "Header"`},
		{"same encrypted key twice", edit(func(rs []map[string]any) { rs[1]["encrypted_key"] = rs[0]["encrypted_key"] }), "recipients 1 and 2 have the same encrypted key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			svc := &service{kr: f.keyring}
			spec := secretSpec{ns: "team-a", name: "db", data: map[string][]byte{"pw": c.value}}
			resp := admission.NewReviewer(svc, admission.Options{}).Review(context.Background(), zap.NewNop(), spec.request(t))
			wantDenial(t, resp, http.StatusBadRequest, metav1.StatusReasonBadRequest, [][]byte{c.value}, `data key "pw"`, c.want)
			if svc.peak.Load() != 0 {
				t.Error("the key service was called")
			}
		})
	}
}
