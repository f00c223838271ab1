package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// Markers stand for a ciphertext in a request and a plaintext in a patch; neither
// may reach the log.
const (
	bodyMarker  = "CIPHERTEXT-MARKER"
	patchMarker = "PLAINTEXT-MARKER"
)

type reviewerFunc func(context.Context, *zap.Logger, *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse

func (f reviewerFunc) Review(ctx context.Context, log *zap.Logger, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	return f(ctx, log, req)
}

// patching logs through the logger it is given and answers with a patch.
var patching = reviewerFunc(func(_ context.Context, log *zap.Logger, _ *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	log.Debug("reviewing")
	pt := admissionv1.PatchTypeJSONPatch
	return &admissionv1.AdmissionResponse{
		Allowed:   true,
		PatchType: &pt,
		Patch:     []byte(`[{"op":"replace","path":"/data/password","value":"` + patchMarker + `"}]`),
	}
})

type testServer struct {
	addr   string
	client *http.Client
	ca     *testCA
	logs   *observer.ObservedLogs
	cancel context.CancelFunc
	done   chan error

	certFile, keyFile string
}

// startServer serves rev on 127.0.0.1 with a certificate of serial 100 and
// stops the server when the test ends.
func startServer(t *testing.T, rev Reviewer, cfg Config) *testServer {
	t.Helper()
	ts := &testServer{done: make(chan error, 1)}
	ts.ca, ts.certFile, ts.keyFile = newCertFiles(t, 100, time.Now().Add(-time.Minute))
	cfg.CertFile, cfg.KeyFile = ts.certFile, ts.keyFile
	if cfg.CertReloadInterval == 0 {
		cfg.CertReloadInterval = 50 * time.Millisecond
	}
	core, logs := observer.New(zapcore.DebugLevel)
	ts.logs = logs
	srv, err := New(cfg, rev, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(t.Context())
	ts.cancel = cancel
	go func() { ts.done <- srv.Serve(ctx, ln, nil) }()
	ts.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ts.ca.pool}}}
	t.Cleanup(func() {
		ts.client.CloseIdleConnections()
		ts.stop(t)
	})
	return ts
}

// stop cancels Serve's context and waits for it to return.
func (ts *testServer) stop(t *testing.T) error {
	t.Helper()
	ts.cancel()
	err := waitDone(t, ts.done)
	ts.done <- err // a later stop sees the same result
	return err
}

// hangTimeout is how long a test waits for something that should happen at
// once before it calls it a hang: long enough that a loaded machine (CI
// runs -race on 2 shared cores) never reaches it, since tests never fail on
// wall time.
const hangTimeout = time.Minute

// waitDone returns what done delivers, failing the test after hangTimeout.
func waitDone(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(hangTimeout):
		t.Fatalf("server did not return within %s of cancellation", hangTimeout)
		return nil
	}
}

func (ts *testServer) do(t *testing.T, method, path, contentType string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, "https://"+ts.addr+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// servingSerial handshakes with the server and returns the leaf's serial number.
func (ts *testServer) servingSerial(t *testing.T) int64 {
	t.Helper()
	d := tls.Dialer{Config: &tls.Config{RootCAs: ts.ca.pool}}
	conn, err := d.DialContext(t.Context(), "tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// eventually polls cond until it holds, failing the test after 5s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(hangTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

func reviewBody(t *testing.T, uid string) []byte {
	t.Helper()
	secret := `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"db","namespace":"hr"},"data":{"password":"` + bodyMarker + `"}}`
	b, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       types.UID(uid),
			Namespace: "hr",
			Name:      "db",
			Operation: admissionv1.Create,
			Object:    runtime.RawExtension{Raw: []byte(secret)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMutate(t *testing.T) {
	const maxBytes = 16 << 10
	var deadline time.Time
	rev := reviewerFunc(func(ctx context.Context, log *zap.Logger, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		deadline, _ = ctx.Deadline()
		return patching(ctx, log, req)
	})
	ts := startServer(t, rev, Config{MaxRequestBytes: maxBytes, RequestTimeout: 3 * time.Second})

	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        []byte
		want        int
	}{
		{"review", "POST", "/mutate", "application/json", reviewBody(t, "u1"), http.StatusOK},
		{"review with charset", "POST", "/mutate", "application/json; charset=utf-8", reviewBody(t, "u1"), http.StatusOK},
		{"body over the cap", "POST", "/mutate", "application/json", bytes.Repeat([]byte(" "), maxBytes+1), http.StatusRequestEntityTooLarge},
		{"wrong content type", "POST", "/mutate", "text/plain", reviewBody(t, "u1"), http.StatusUnsupportedMediaType},
		{"no content type", "POST", "/mutate", "", reviewBody(t, "u1"), http.StatusUnsupportedMediaType},
		{"empty body", "POST", "/mutate", "application/json", nil, http.StatusBadRequest},
		{"garbage", "POST", "/mutate", "application/json", []byte("{not json " + bodyMarker), http.StatusBadRequest},
		{"wrong kind", "POST", "/mutate", "application/json", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"Pod","request":{"uid":"x"}}`), http.StatusBadRequest},
		{"no request", "POST", "/mutate", "application/json", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), http.StatusBadRequest},
		{"GET /mutate", "GET", "/mutate", "", nil, http.StatusMethodNotAllowed},
		{"healthz", "GET", "/healthz", "", nil, http.StatusOK},
		{"readyz", "GET", "/readyz", "", nil, http.StatusOK},
		{"unknown path", "GET", "/", "", nil, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := ts.do(t, tt.method, tt.path, tt.contentType, tt.body)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, bytes.TrimSpace(body), tt.want)
			}
			if tt.path != "/mutate" || tt.want != http.StatusOK {
				return
			}
			var review admissionv1.AdmissionReview
			if err := json.Unmarshal(body, &review); err != nil {
				t.Fatalf("decode response: %v", err)
			}
			if review.APIVersion != "admission.k8s.io/v1" || review.Kind != "AdmissionReview" {
				t.Errorf("response is %s %s, want admission.k8s.io/v1 AdmissionReview", review.APIVersion, review.Kind)
			}
			if r := review.Response; r == nil || r.UID != "u1" || !r.Allowed || len(r.Patch) == 0 {
				t.Errorf("response = %+v, want allowed with a patch and uid u1", r)
			}
			if left := time.Until(deadline); left <= 0 || left > 3*time.Second {
				t.Errorf("review context deadline %v from now, want within RequestTimeout 3s", left)
			}
		})
	}
}

// TestMutateLogs checks the request fields reach the Reviewer's logger, one
// line records each outcome, and neither body nor patch is logged.
func TestMutateLogs(t *testing.T) {
	denying := reviewerFunc(func(_ context.Context, log *zap.Logger, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		if req.UID == "allow" {
			return patching(context.Background(), log, req)
		}
		log.Debug("reviewing")
		return &admissionv1.AdmissionResponse{Result: &metav1.Status{Message: `data key "password": unknown kid`}}
	})
	ts := startServer(t, denying, Config{})
	for _, c := range []struct {
		body []byte
		code int
	}{
		{reviewBody(t, "allow"), http.StatusOK},
		{reviewBody(t, "deny"), http.StatusOK},
		{[]byte(bodyMarker), http.StatusBadRequest},
	} {
		if resp, b := ts.do(t, "POST", "/mutate", "application/json", c.body); resp.StatusCode != c.code {
			t.Fatalf("POST /mutate %.20q: status %d, want %d: %s", c.body, resp.StatusCode, c.code, b)
		}
	}

	want := map[string]map[string]any{
		"allow": {"allowed": true, "patched": true},
		"deny":  {"allowed": false, "patched": false, "reason": `data key "password": unknown kid`},
	}
	for uid, fields := range want {
		var reviewing, outcome bool
		for _, e := range ts.logs.FilterField(zap.String("uid", uid)).All() {
			ctx := e.ContextMap()
			if ctx["namespace"] != "hr" || ctx["name"] != "db" || ctx["operation"] != "CREATE" || ctx["dryRun"] != false {
				t.Errorf("uid %s: %q lacks request fields: %v", uid, e.Message, ctx)
			}
			switch e.Message {
			case "reviewing":
				reviewing = true
			case "admission review":
				outcome = true
				for k, v := range fields {
					if ctx[k] != v {
						t.Errorf("uid %s: %s = %v, want %v", uid, k, ctx[k], v)
					}
				}
				if _, ok := ctx["duration"]; !ok {
					t.Errorf("uid %s: outcome line has no duration", uid)
				}
			}
		}
		if !reviewing || !outcome {
			t.Errorf("uid %s: reviewer line logged %v, outcome line logged %v; want both", uid, reviewing, outcome)
		}
	}
	if n := ts.logs.FilterMessage("admission review rejected").Len(); n != 1 {
		t.Errorf("%d rejection lines for one garbage body, want 1", n)
	}
	for _, e := range ts.logs.All() {
		line := fmt.Sprint(e.Message, e.ContextMap())
		if strings.Contains(line, bodyMarker) || strings.Contains(line, patchMarker) {
			t.Errorf("log line leaks the body or patch: %s", line)
		}
	}
}

func TestCertReload(t *testing.T) {
	ts := startServer(t, patching, Config{})
	if got := ts.servingSerial(t); got != 100 {
		t.Fatalf("serving serial %d, want 100", got)
	}

	writeAtomic(t, ts.certFile, []byte("broken"))
	eventually(t, "the failed reload to be logged", func() bool {
		return ts.logs.FilterMessageSnippet("reload serving certificate").FilterLevelExact(zapcore.ErrorLevel).Len() > 0
	})
	if got := ts.servingSerial(t); got != 100 {
		t.Errorf("after a broken reload serving serial %d, want 100", got)
	}

	certPEM, keyPEM := ts.ca.issue(t, 200, time.Now().Add(-time.Minute))
	writeAtomic(t, ts.keyFile, keyPEM)
	writeAtomic(t, ts.certFile, certPEM)
	eventually(t, "the new certificate to be served", func() bool { return ts.servingSerial(t) == 200 })

	if resp, _ := ts.do(t, "GET", "/readyz", "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz after reload: %d, want 200", resp.StatusCode)
	}
}

func TestReadyzExpiredCert(t *testing.T) {
	_, certFile, keyFile := newCertFiles(t, 1, time.Now().Add(-2*time.Hour))
	srv, err := New(Config{CertFile: certFile, KeyFile: keyFile}, patching, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with an expired certificate: %d, want 503", rec.Code)
	}
}

func TestGracefulShutdown(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	blocking := reviewerFunc(func(ctx context.Context, log *zap.Logger, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		close(started)
		<-release
		return patching(ctx, log, req)
	})
	ts := startServer(t, blocking, Config{ShutdownTimeout: 5 * time.Second})

	status := make(chan int, 1)
	go func() {
		resp, err := ts.client.Post("https://"+ts.addr+"/mutate", "application/json", bytes.NewReader(reviewBody(t, "u1")))
		if err != nil {
			status <- 0
			return
		}
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	<-started
	ts.cancel()
	eventually(t, "shutdown to begin", func() bool { return ts.logs.FilterMessage("shutting down").Len() > 0 })
	close(release)

	if got := <-status; got != http.StatusOK {
		t.Errorf("in-flight request during shutdown: status %d, want 200", got)
	}
	if err := ts.stop(t); err != nil {
		t.Errorf("Serve returned %v after cancellation, want nil", err)
	}
}

func TestRunShutdown(t *testing.T) {
	_, certFile, keyFile := newCertFiles(t, 1, time.Now().Add(-time.Minute))
	srv, err := New(Config{Addr: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile}, patching, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	cancel()
	if err := waitDone(t, done); err != nil {
		t.Errorf("Run returned %v after cancellation, want nil", err)
	}
}

func TestNewRejectsLongRequestTimeout(t *testing.T) {
	_, certFile, keyFile := newCertFiles(t, 1, time.Now().Add(-time.Minute))
	_, err := New(Config{CertFile: certFile, KeyFile: keyFile, RequestTimeout: 30 * time.Second}, patching, zap.NewNop())
	if err == nil {
		t.Error("New with a request timeout beyond the write timeout: no error")
	}
}
