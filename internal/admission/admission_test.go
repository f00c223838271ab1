package admission_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/jwe-webhook/jwe-webhook/internal/admission"
	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/local"
)

// fixture holds two local keys: rsa (any namespace) and ec (only "team-*").
type fixture struct {
	rsa, ec, stranger *local.Key
	keyring           *kms.Keyring
}

func loadKey(t testing.TB, name string) *local.Key {
	t.Helper()
	ks, err := local.LoadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return ks[0]
}

func newFixture(t testing.TB) *fixture {
	f := &fixture{rsa: loadKey(t, "rsa-2048.pem"), ec: loadKey(t, "ec-p256.pem"), stranger: loadKey(t, "ec-p256-other.pem")}
	kr, err := kms.NewKeyring(kms.Options{},
		kms.Entry{Decrypter: f.rsa, Provider: "local"},
		kms.Entry{Decrypter: f.ec, Provider: "local", Namespaces: []string{"team-*"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	f.keyring = kr
	return f
}

func encrypt(t testing.TB, k *local.Key, plaintext string, scope jwe.Scope) []byte {
	t.Helper()
	out, err := jwe.Encrypt([]byte(plaintext), scope, "", jwe.PublicKey{Key: k.Public(), KeyID: k.KeyID()})
	if err != nil {
		t.Fatal(err)
	}
	return []byte(out)
}

type secretSpec struct {
	op          admissionv1.Operation
	ns, name    string
	data        map[string][]byte
	annotations map[string]string
	dryRun      bool
}

func (s secretSpec) request(t testing.TB) *admissionv1.AdmissionRequest {
	t.Helper()
	obj := map[string]any{
		"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
		"metadata": map[string]any{"name": s.name, "namespace": s.ns, "annotations": s.annotations},
		"data":     s.data,
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	op := s.op
	if op == "" {
		op = admissionv1.Create
	}
	req := &admissionv1.AdmissionRequest{
		UID:       "uid-1",
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Secret"},
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "secrets"},
		Namespace: s.ns, Name: s.name, Operation: op,
		Object: runtime.RawExtension{Raw: raw},
		DryRun: &s.dryRun,
	}
	if op == admissionv1.Update {
		req.OldObject = runtime.RawExtension{Raw: raw}
	}
	return req
}

// patched applies resp's patch to the request object and returns its data.
func patched(t testing.TB, req *admissionv1.AdmissionRequest, resp *admissionv1.AdmissionResponse) map[string]string {
	t.Helper()
	raw := req.Object.Raw
	if resp.Patch != nil {
		if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
			t.Fatalf("patch type %v", resp.PatchType)
		}
		p, err := jsonpatch.DecodePatch(resp.Patch)
		if err != nil {
			t.Fatal(err)
		}
		if raw, err = p.Apply(raw); err != nil {
			t.Fatal(err)
		}
	}
	var s struct {
		Data map[string][]byte `json:"data"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range s.Data {
		out[k] = string(v)
	}
	return out
}

// secrets are the plaintexts used below; none may appear outside the patch.
var secrets = []string{"PT-hunter2-e1", "PT-db-password-e2", "PT-api-token-e3", "PT-other-e4"}

// leaks returns any secret found in s, as text or base64.
func leaks(s string) []string {
	var found []string
	for _, p := range secrets {
		if strings.Contains(s, p) || strings.Contains(s, base64.StdEncoding.EncodeToString([]byte(p))) {
			found = append(found, p)
		}
	}
	return found
}

// logSink is a zap logger at debug level that writes JSON into a buffer.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logSink) logger() *zap.Logger {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(l), zapcore.DebugLevel))
}

func TestReview(t *testing.T) {
	f := newFixture(t)
	strict := jwe.Scope{Namespace: "team-a", Name: "db"}
	tampered := flipCiphertextBit(t, encrypt(t, f.rsa, secrets[0], strict))

	cases := []struct {
		name     string
		spec     secretSpec
		want     map[string]string // data after the patch; nil when denied
		denial   []string          // substrings of the denial message
		code     int32             // HTTP code of the denial
		warnings int
	}{
		{
			name: "plaintext secret unchanged",
			spec: secretSpec{ns: "team-a", name: "db", data: map[string][]byte{"user": []byte("admin"), "pw": []byte("x")}},
			want: map[string]string{"user": "admin", "pw": "x"},
		},
		{
			name: "one value",
			spec: secretSpec{ns: "team-a", name: "db", data: map[string][]byte{"password": encrypt(t, f.rsa, secrets[0], strict)}},
			want: map[string]string{"password": secrets[0]},
		},
		{
			name: "many values and plain ones mixed",
			spec: secretSpec{ns: "team-a", name: "db", data: map[string][]byte{
				"a": encrypt(t, f.rsa, secrets[0], strict),
				"b": encrypt(t, f.ec, secrets[1], jwe.Scope{Namespace: "team-a"}),
				"c": []byte("plain"),
				"d": encrypt(t, f.rsa, secrets[2], strict),
			}},
			want: map[string]string{"a": secrets[0], "b": secrets[1], "c": "plain", "d": secrets[2]},
		},
		{
			// "~1" and "~0" in a key must not be read back as "/" and "~":
			// "a~1b" patched as "/data/a~1b" would replace "a/b".
			name: "data keys needing JSON Pointer escapes",
			spec: secretSpec{ns: "team-a", name: "db", data: map[string][]byte{
				"a/b~c": encrypt(t, f.rsa, secrets[0], strict),
				"a~1b":  encrypt(t, f.rsa, secrets[1], strict),
				"a/b":   []byte("plain"),
				"x~0y":  encrypt(t, f.rsa, secrets[2], strict),
				"x~y":   []byte("plain too"),
			}},
			want: map[string]string{"a/b~c": secrets[0], "a~1b": secrets[1], "a/b": "plain", "x~0y": secrets[2], "x~y": "plain too"},
		},
		{
			name: "update",
			spec: secretSpec{op: admissionv1.Update, ns: "team-a", name: "db", data: map[string][]byte{"password": encrypt(t, f.rsa, secrets[1], strict)}},
			want: map[string]string{"password": secrets[1]},
		},
		{
			name: "dry run is handled the same",
			spec: secretSpec{dryRun: true, ns: "team-a", name: "db", data: map[string][]byte{"password": encrypt(t, f.rsa, secrets[1], strict)}},
			want: map[string]string{"password": secrets[1]},
		},
		{
			name: "skip annotation leaves ciphertext",
			spec: secretSpec{ns: "team-a", name: "db", annotations: map[string]string{admission.SkipAnnotation: "true"},
				data: map[string][]byte{"password": []byte("eyJ-not-even-valid")}},
			want: map[string]string{"password": "eyJ-not-even-valid"},
		},
		{
			name:     "cluster scope accepted anywhere, with a warning",
			spec:     secretSpec{ns: "elsewhere", name: "x", data: map[string][]byte{"k": encrypt(t, f.rsa, secrets[2], jwe.Scope{})}},
			want:     map[string]string{"k": secrets[2]},
			warnings: 1,
		},
		{
			name: "namespace scope in another secret of the namespace",
			spec: secretSpec{ns: "team-a", name: "other", data: map[string][]byte{"k": encrypt(t, f.rsa, secrets[2], jwe.Scope{Namespace: "team-a"})}},
			want: map[string]string{"k": secrets[2]},
		},
		{
			name:   "namespace scope in another namespace",
			spec:   secretSpec{ns: "team-b", name: "db", data: map[string][]byte{"k": encrypt(t, f.rsa, secrets[2], jwe.Scope{Namespace: "team-a"})}},
			denial: []string{`data key "k"`, `bound to namespace "team-a", not "team-b"`},
			code:   http.StatusForbidden,
		},
		{
			name:   "strict scope in another secret",
			spec:   secretSpec{ns: "team-a", name: "other", data: map[string][]byte{"k": encrypt(t, f.rsa, secrets[2], strict)}},
			denial: []string{`data key "k"`, `bound to Secret "db", not "other"`},
			code:   http.StatusForbidden,
		},
		{
			name:   "unknown kid",
			spec:   secretSpec{ns: "team-a", name: "db", data: map[string][]byte{"pw": encrypt(t, f.stranger, secrets[3], strict)}},
			denial: []string{`data key "pw"`, "no configured key has kid"},
			code:   http.StatusForbidden,
		},
		{
			name:   "tampered ciphertext",
			spec:   secretSpec{ns: "team-a", name: "db", data: map[string][]byte{"pw": tampered}},
			denial: []string{`data key "pw"`, "value does not decrypt"},
			code:   http.StatusBadRequest,
		},
		{
			name: "wrong key under a known kid",
			spec: secretSpec{ns: "team-a", name: "db", data: map[string][]byte{"pw": func() []byte {
				out, err := jwe.Encrypt([]byte(secrets[3]), strict, "", jwe.PublicKey{Key: f.stranger.Public(), KeyID: f.ec.KeyID()})
				if err != nil {
					t.Fatal(err)
				}
				return []byte(out)
			}()}},
			// Same answer as the tampered ciphertext (RFC 7516 section 11.5).
			denial: []string{`data key "pw"`, "value does not decrypt"},
			code:   http.StatusBadRequest,
		},
		{
			name:   "key limited to other namespaces",
			spec:   secretSpec{ns: "prod", name: "db", data: map[string][]byte{"pw": encrypt(t, f.ec, secrets[3], jwe.Scope{Namespace: "prod"})}},
			denial: []string{`data key "pw"`, fmt.Sprintf("key %q may not be used in namespace %q", f.ec.KeyID(), "prod")},
			code:   http.StatusForbidden,
		},
		{
			name:   "forbidden algorithm",
			spec:   secretSpec{ns: "team-a", name: "db", data: map[string][]byte{"pw": []byte(b64(`{"alg":"dir","enc":"A256GCM"}`) + "..aXY.Yw.dA")}},
			denial: []string{`data key "pw"`, `key algorithm "dir" is not allowed`},
			code:   http.StatusBadRequest,
		},
		{
			name: "every failing key is named, nothing stored",
			spec: secretSpec{ns: "team-a", name: "db", data: map[string][]byte{
				"good": encrypt(t, f.rsa, secrets[0], strict),
				"bad1": encrypt(t, f.rsa, secrets[1], jwe.Scope{Namespace: "team-z"}),
				"bad2": encrypt(t, f.rsa, secrets[2], jwe.Scope{Namespace: "team-y"}),
			}},
			denial: []string{`data key "bad1"`, `data key "bad2"`},
			code:   http.StatusForbidden,
		},
	}

	sink := &logSink{}
	log := sink.logger()
	r := admission.NewReviewer(f.keyring, admission.Options{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := c.spec.request(t)
			resp := r.Review(context.Background(), log, req)
			if resp.UID != req.UID {
				t.Fatalf("uid %q not echoed", resp.UID)
			}
			body, _ := json.Marshal(resp)
			if c.denial != nil {
				if resp.Allowed || resp.Patch != nil || resp.Result == nil {
					t.Fatalf("want a denial, got %s", body)
				}
				if resp.Result.Code != c.code {
					t.Errorf("denial code %d, want %d", resp.Result.Code, c.code)
				}
				for _, want := range c.denial {
					if !strings.Contains(resp.Result.Message, want) {
						t.Errorf("denial %q does not contain %q", resp.Result.Message, want)
					}
				}
				if l := leaks(string(body)); l != nil {
					t.Fatalf("denial leaks %q", l)
				}
				return
			}
			if !resp.Allowed {
				t.Fatalf("denied: %s", resp.Result.Message)
			}
			got := patched(t, req, resp)
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("data %v, want %v", got, c.want)
			}
			if len(resp.Warnings) != c.warnings {
				t.Errorf("warnings %q", resp.Warnings)
			}
			// Outside the patch, nothing carries a secret.
			resp.Patch = nil
			outside, _ := json.Marshal(resp)
			if l := leaks(string(outside)); l != nil {
				t.Fatalf("response outside the patch leaks %q: %s", l, outside)
			}
		})
	}
	logs := sink.String()
	if !strings.Contains(logs, "values refused") || !strings.Contains(logs, "value decrypted") {
		t.Fatalf("the logger saw nothing; the leak check would be empty:\n%s", logs)
	}
	if l := leaks(logs); l != nil {
		t.Fatalf("logs leak %q:\n%s", l, logs)
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// flipCiphertextBit changes one bit of a compact JWE's ciphertext, keeping
// the encoding valid.
func flipCiphertextBit(t testing.TB, compact []byte) []byte {
	t.Helper()
	parts := strings.Split(string(compact), ".")
	ct, err := base64.RawURLEncoding.DecodeString(parts[3])
	if err != nil || len(ct) == 0 {
		t.Fatalf("ciphertext: %v", err)
	}
	ct[0] ^= 1
	parts[3] = base64.RawURLEncoding.EncodeToString(ct)
	return []byte(strings.Join(parts, "."))
}

func TestAuditAnnotations(t *testing.T) {
	f := newFixture(t)
	spec := secretSpec{ns: "team-a", name: "db", data: map[string][]byte{
		"a": encrypt(t, f.rsa, secrets[0], jwe.Scope{Namespace: "team-a"}),
		"b": encrypt(t, f.ec, secrets[1], jwe.Scope{Namespace: "team-a"}),
		"c": encrypt(t, f.rsa, secrets[2], jwe.Scope{}),
	}}
	resp := admission.NewReviewer(f.keyring, admission.Options{}).Review(context.Background(), zap.NewNop(), spec.request(t))
	kids := []string{f.rsa.KeyID(), f.ec.KeyID()}
	if kids[0] > kids[1] {
		kids[0], kids[1] = kids[1], kids[0]
	}
	want := map[string]string{admission.AuditDecrypted: "3", admission.AuditKeyIDs: strings.Join(kids, ",")}
	if fmt.Sprint(resp.AuditAnnotations) != fmt.Sprint(want) {
		t.Fatalf("audit annotations %v, want %v", resp.AuditAnnotations, want)
	}
}

func TestNotSecretWrites(t *testing.T) {
	f := newFixture(t)
	r := admission.NewReviewer(f.keyring, admission.Options{})
	spec := secretSpec{ns: "team-a", name: "db", data: map[string][]byte{"a": encrypt(t, f.rsa, secrets[0], jwe.Scope{})}}
	del := spec.request(t)
	del.Operation = admissionv1.Delete
	cm := spec.request(t)
	cm.Kind = metav1.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
	for name, req := range map[string]*admissionv1.AdmissionRequest{"delete": del, "configmap": cm} {
		resp := r.Review(context.Background(), zap.NewNop(), req)
		if !resp.Allowed || resp.Patch != nil {
			t.Errorf("%s: want allowed without a patch, got %+v", name, resp)
		}
	}
}

// service is an Unwrapper standing for a remote key service.
type service struct {
	err             error
	inFlight, peak  atomic.Int32
	block           chan struct{} // when set, each call waits for a value
	entered         chan struct{} // when set, each call reports that it started
	kr              *kms.Keyring
	calledNamespace atomic.Value
}

func (s *service) Unwrap(ctx context.Context, ns string, k jwe.Recipient) ([]byte, error) {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for {
		p := s.peak.Load()
		if n <= p || s.peak.CompareAndSwap(p, n) {
			break
		}
	}
	s.calledNamespace.Store(ns)
	if s.entered != nil {
		s.entered <- struct{}{}
	}
	if s.block != nil {
		<-s.block
	}
	if s.err != nil {
		return nil, s.err
	}
	return s.kr.Unwrap(ctx, ns, k)
}

func TestKeyServiceFailure(t *testing.T) {
	f := newFixture(t)
	svc := &service{err: fmt.Errorf("unwrap with key %q (gcpkms): rpc error: code = Unavailable", f.rsa.KeyID())}
	spec := secretSpec{ns: "team-a", name: "db", data: map[string][]byte{"pw": encrypt(t, f.rsa, secrets[0], jwe.Scope{})}}
	resp := admission.NewReviewer(svc, admission.Options{}).Review(context.Background(), zap.NewNop(), spec.request(t))
	if resp.Allowed || !strings.Contains(resp.Result.Message, `data key "pw": unwrap with key`) || !strings.Contains(resp.Result.Message, "(gcpkms)") {
		t.Fatalf("got %+v", resp.Result)
	}
	if resp.Result.Code != 503 {
		t.Errorf("code %d, want 503", resp.Result.Code)
	}
	if ns, _ := svc.calledNamespace.Load().(string); ns != "team-a" {
		t.Errorf("key service asked for namespace %q", ns)
	}
}

func TestConcurrencyIsBounded(t *testing.T) {
	const values, limit = 10, 3
	f := newFixture(t)
	svc := &service{kr: f.keyring, block: make(chan struct{}), entered: make(chan struct{}, values)}
	data := map[string][]byte{}
	for i := range values {
		data[fmt.Sprintf("k%d", i)] = encrypt(t, f.ec, fmt.Sprintf("v%d", i), jwe.Scope{})
	}
	spec := secretSpec{ns: "team-a", name: "db", data: data}
	done := make(chan *admissionv1.AdmissionResponse)
	go func() {
		done <- admission.NewReviewer(svc, admission.Options{Concurrency: limit}).Review(context.Background(), zap.NewNop(), spec.request(t))
	}()
	// Every call is held until the reviewer has as many in flight as it
	// may (or as many as are left); only then is one released. So the peak
	// is the limit whatever the scheduler does, and a reviewer that starts
	// more than the limit shows it in the peak.
	waitEntered := func() {
		t.Helper()
		select {
		case <-svc.entered:
		case <-time.After(time.Minute):
			t.Fatalf("no key-service call started; %d in flight", svc.inFlight.Load())
		}
	}
	for range limit {
		waitEntered()
	}
	for released := range values {
		svc.block <- struct{}{}
		if released+limit < values {
			waitEntered()
		}
	}
	resp := <-done
	if !resp.Allowed {
		t.Fatal(resp.Result.Message)
	}
	if p := svc.peak.Load(); p != limit {
		t.Fatalf("peak concurrency %d, want %d", p, limit)
	}
	if got := patched(t, spec.request(t), resp); len(got) != values || got["k7"] != "v7" {
		t.Fatalf("got %v", got)
	}
}

func TestDecode(t *testing.T) {
	good := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","operation":"CREATE"}}`
	if r, err := admission.Decode([]byte(good)); err != nil || r.Request.UID != "u1" {
		t.Fatalf("%v %v", r, err)
	}
	for name, body := range map[string]string{
		"empty":      "",
		"not json":   "{",
		"v1beta1":    `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u"}}`,
		"no request": `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`,
		"no uid":     `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}`,
		"wrong type": `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":7}}`,
	} {
		if _, err := admission.Decode([]byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRespond(t *testing.T) {
	out, err := json.Marshal(admission.Respond(&admissionv1.AdmissionResponse{UID: "u", Allowed: true}))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","response":{"uid":"u","allowed":true}}`
	if string(out) != want {
		t.Fatalf("got %s", out)
	}
}

func TestContextCanceled(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	svc := &service{err: context.Canceled}
	spec := secretSpec{ns: "team-a", name: "db", data: map[string][]byte{"pw": encrypt(t, f.rsa, secrets[0], jwe.Scope{})}}
	resp := admission.NewReviewer(svc, admission.Options{}).Review(ctx, zap.NewNop(), spec.request(t))
	if resp.Allowed || resp.Result.Code != 504 || !strings.Contains(resp.Result.Message, `data key "pw"`) {
		t.Fatalf("got %+v", resp.Result)
	}
}
