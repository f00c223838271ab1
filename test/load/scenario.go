package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"golang.org/x/sync/errgroup"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/gcpkms/gcpkmstest"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/local"
)

// scenario is one kind of load.
type scenario struct {
	name   string
	bits   int  // RSA key size of the webhook's key
	values int  // JWE values per Secret
	fresh  bool // a new Secret per request, so the content-key cache cannot hit
	remote bool // the key is in the fake Cloud KMS
}

var scenarios = []scenario{
	{name: "cache-hit", bits: 2048, values: 1},
	{name: "cold-rsa2048", bits: 2048, values: 1, fresh: true},
	{name: "cold-rsa4096", bits: 4096, values: 1, fresh: true},
	{name: "ten-values", bits: 4096, values: 10, fresh: true},
	{name: "remote", bits: 2048, values: 1, fresh: true, remote: true},
}

// lookupScenarios resolves -scenario: names separated by commas, or "all".
func lookupScenarios(list string) ([]scenario, error) {
	if list == "all" {
		return scenarios, nil
	}
	var out []scenario
	for name := range strings.SplitSeq(list, ",") {
		i := slices.IndexFunc(scenarios, func(s scenario) bool { return s.name == strings.TrimSpace(name) })
		if i < 0 {
			names := make([]string, len(scenarios))
			for j, s := range scenarios {
				names[j] = s.name
			}
			return nil, fmt.Errorf("unknown scenario %q; one of %s, or all", name, strings.Join(names, ", "))
		}
		out = append(out, scenarios[i])
	}
	return out, nil
}

// Where the Secret lives; every value is bound to it (strict scope).
const (
	namespace  = "load"
	secretName = "db"
)

// uidMark stands for the request uid in a body template.
const uidMark = "@@uid@@"

// body is an AdmissionReview with the uid left out: prefix + uid + suffix.
type body struct{ prefix, suffix []byte }

func (b body) with(uid string) []byte {
	out := make([]byte, 0, len(b.prefix)+len(uid)+len(b.suffix))
	return append(append(append(out, b.prefix...), uid...), b.suffix...)
}

// reviewFor encodes an AdmissionReview creating the Secret with values JWE
// values encrypted to pk.
func reviewFor(pk jwe.PublicKey, values int) (body, error) {
	data := make(map[string][]byte, values)
	for i := range values {
		v, err := jwe.Encrypt(fmt.Appendf(nil, "load-secret-%d", i), jwe.Scope{Namespace: namespace, Name: secretName}, "", pk)
		if err != nil {
			return body{}, err
		}
		data[fmt.Sprintf("key-%d", i)] = []byte(v)
	}
	obj, err := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
		"metadata": map[string]any{"name": secretName, "namespace": namespace},
		"data":     data,
	})
	if err != nil {
		return body{}, err
	}
	review, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       uidMark,
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Secret"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "secrets"},
			Namespace: namespace, Name: secretName, Operation: admissionv1.Create,
			Object: k8sruntime.RawExtension{Raw: obj},
		},
	})
	if err != nil {
		return body{}, err
	}
	prefix, suffix, _ := strings.Cut(string(review), uidMark)
	return body{[]byte(prefix), []byte(suffix)}, nil
}

// source hands out request bodies: the first over and over (repeat), or
// each of the pool once.
type source struct {
	pool   []body
	repeat bool
	next   atomic.Int64
}

// take returns the next body, or false when the pool is used up.
func (s *source) take() (body, bool) {
	if s.repeat {
		return s.pool[0], true
	}
	i := s.next.Add(1) - 1
	if i >= int64(len(s.pool)) {
		return body{}, false
	}
	return s.pool[i], true
}

// encryptPool encrypts n fresh Secrets on every core.
func encryptPool(ctx context.Context, pk jwe.PublicKey, values, n int) ([]body, error) {
	pool := make([]body, n)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range pool {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			b, err := reviewFor(pk, values)
			pool[i] = b
			return err
		})
	}
	return pool, g.Wait()
}

// poolSize is how many fresh Secrets a scenario may use: -n when given,
// otherwise the most the run could take, with a margin.
func (c config) poolSize(s scenario, baseline time.Duration) int {
	if c.pool > 0 {
		return c.pool
	}
	n := c.count
	if n == 0 {
		// The fastest admissions can go: every core on RSA decrypts, or
		// every worker waiting one remote call at a time.
		perSec := float64(runtime.NumCPU()) / (float64(s.values) * baseline.Seconds())
		if s.remote {
			perSec = float64(c.concurrency) / baseline.Seconds()
		}
		if c.rate > 0 {
			perSec = min(perSec, c.rate)
		}
		// Twice that, as the baseline is timed on one core before the
		// load and a busy machine times it slow.
		n = max(int(perSec*c.duration.Seconds()*2), 500) + c.concurrency
	}
	return n + c.warmup
}

// keyPair is an RSA key the webhook holds, and what values are encrypted to.
type keyPair struct {
	priv *rsa.PrivateKey // nil with -addr: only the public key is known
	pub  jwe.PublicKey
	file string // the private key's PEM file, for --key-file
}

// localKey returns the webhook's RSA key of bits: with -addr the -key file,
// otherwise a key generated once per size and written to dir.
func (r *runner) localKey(bits int) (*keyPair, error) {
	if k, ok := r.keys[bits]; ok {
		return k, nil
	}
	var k *keyPair
	var err error
	if r.cfg.addr != "" {
		k, err = loadPublicKey(r.cfg.keyFile, bits)
	} else {
		k, err = generateKey(r.dir, bits)
	}
	if err != nil {
		return nil, err
	}
	r.keys[bits] = k
	return k, nil
}

func loadPublicKey(path string, bits int) (*keyPair, error) {
	pubs, err := local.LoadPublicFile(path)
	if err != nil {
		return nil, err
	}
	for _, p := range pubs {
		if k, ok := p.Key.(*rsa.PublicKey); ok && k.N.BitLen() == bits {
			return &keyPair{pub: jwe.PublicKey{Key: k, KeyID: p.KeyID}}, nil
		}
	}
	return nil, fmt.Errorf("%s holds no RSA-%d public key, which the scenario needs", path, bits)
}

func generateKey(dir string, bits int) (*keyPair, error) {
	priv, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	file := filepath.Join(dir, fmt.Sprintf("rsa-%d.pem", bits))
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	kid, err := local.KeyID(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	return &keyPair{priv: priv, pub: jwe.PublicKey{Key: &priv.PublicKey, KeyID: kid}, file: file}, nil
}

// rsaDecrypt measures one rsa.DecryptOAEP (SHA-256) with a key of bits, the
// way the webhook unwraps a content key, for at least half a second.
func (r *runner) rsaDecrypt(bits int) (time.Duration, error) {
	if d, ok := r.baselines[bits]; ok {
		return d, nil
	}
	k := r.keys[bits]
	priv := k.priv
	if priv == nil { // -addr: time a key of the same size
		var err error
		if priv, err = rsa.GenerateKey(rand.Reader, bits); err != nil {
			return 0, err
		}
	}
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &priv.PublicKey, make([]byte, 32), nil)
	if err != nil {
		return 0, err
	}
	start, n := time.Now(), 0
	for n < 20 || time.Since(start) < 500*time.Millisecond {
		if _, err := rsa.DecryptOAEP(sha256.New(), nil, priv, ct, nil); err != nil {
			return 0, err
		}
		n++
	}
	d := time.Since(start) / time.Duration(n)
	r.baselines[bits] = d
	return d, nil
}

// fakeKMS is the remote scenario's Cloud KMS: one RSA-2048 key version that
// answers after the injected latency.
type fakeKMS struct {
	srv        *gcpkmstest.Server
	configFile string
	pub        jwe.PublicKey
}

const (
	gcpCryptoKey = "projects/load/locations/global/keyRings/load/cryptoKeys/webhook"
	gcpVersion   = gcpCryptoKey + "/cryptoKeyVersions/1"
)

func startFakeKMS(dir string, k *keyPair, latency time.Duration) (*fakeKMS, error) {
	srv, err := gcpkmstest.NewServer("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if err := srv.AddVersion(gcpVersion, kmspb.CryptoKeyVersion_RSA_DECRYPT_OAEP_2048_SHA256, k.priv); err != nil {
		srv.Close()
		return nil, err
	}
	srv.SetFaults(gcpkmstest.Faults{Delay: latency})
	config := fmt.Sprintf("keys:\n  - provider: gcpkms\n    gcpkms: {name: %s, endpoint: %q, insecure: true}\n", gcpCryptoKey, srv.Addr())
	file := filepath.Join(dir, "keys.yaml")
	if err := os.WriteFile(file, []byte(config), 0o600); err != nil {
		srv.Close()
		return nil, err
	}
	return &fakeKMS{srv: srv, configFile: file, pub: jwe.PublicKey{Key: k.pub.Key, KeyID: gcpVersion}}, nil
}

// runner runs scenarios one after another and holds what they share.
type runner struct {
	cfg       config
	dir       string // keys, certificate, key configuration
	stderr    io.Writer
	keys      map[int]*keyPair
	baselines map[int]time.Duration
	target    *target
	logPath   string
	log       *os.File
}

func newRunner(ctx context.Context, c config, stderr io.Writer) (*runner, error) {
	dir, err := os.MkdirTemp("", "jwe-webhook-load-")
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: c, dir: dir, stderr: stderr, keys: map[int]*keyPair{}, baselines: map[int]time.Duration{}}
	if c.addr != "" {
		r.target, err = dialTarget(c.addr, c.caFile, c)
	} else {
		err = r.openWebhook(ctx)
	}
	if err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

func (r *runner) close() {
	if r.log != nil {
		r.log.Close()
	}
	os.RemoveAll(r.dir)
}

// run runs one scenario: keys, baseline and Secrets first, then the webhook
// when -start, then the load.
func (r *runner) run(ctx context.Context, s scenario) (*report, error) {
	k, err := r.localKey(s.bits)
	if err != nil {
		return nil, err
	}
	rep := &report{scenario: s, concurrency: r.cfg.concurrency, rate: r.cfg.rate}
	pk, keyArgs := k.pub, []string{"--key-file", k.file}
	if s.remote {
		kms, err := startFakeKMS(r.dir, k, r.cfg.latency)
		if err != nil {
			return nil, err
		}
		defer kms.srv.Close()
		pk, keyArgs = kms.pub, []string{"--key-config", kms.configFile}
		rep.baseline, rep.baselineName = r.cfg.latency, "injected latency"
	} else {
		if rep.baseline, err = r.rsaDecrypt(s.bits); err != nil {
			return nil, err
		}
		rep.baselineName = fmt.Sprintf("RSA-%d decrypt", s.bits)
	}

	n := 1
	if s.fresh {
		n = r.cfg.poolSize(s, rep.baseline)
	}
	fmt.Fprintf(r.stderr, "load: %s: encrypting %d Secret(s) of %d value(s)\n", s.name, n, s.values)
	pool, err := encryptPool(ctx, pk, s.values, n)
	if err != nil {
		return nil, err
	}
	src := &source{pool: pool, repeat: !s.fresh}

	t := r.target
	if r.cfg.start {
		w, err := r.startWebhook(ctx, keyArgs)
		if err != nil {
			return nil, err
		}
		defer w.stop()
		t = w.target
	}
	fmt.Fprintf(r.stderr, "load: %s: %d warm-up admission(s), then %s\n", s.name, r.cfg.warmup, r.cfg.describeLoad())
	if res := t.generate(ctx, src, load{concurrency: r.cfg.concurrency, count: r.cfg.warmup, duration: r.cfg.duration}); res.errors() > 0 {
		rep.result, rep.warmupFailed = res, true
		return rep, nil // the report shows what failed
	}
	rep.result = t.generate(ctx, src, load{
		concurrency: r.cfg.concurrency, rate: r.cfg.rate, count: r.cfg.count, duration: r.cfg.duration, record: true,
	})
	return rep, ctx.Err()
}

func (c config) describeLoad() string {
	what := fmt.Sprintf("%d workers", c.concurrency)
	if c.rate > 0 {
		what = fmt.Sprintf("%g requests/s (at most %d at once)", c.rate, c.concurrency)
	}
	if c.count > 0 {
		return fmt.Sprintf("%s for %d admissions or %s", what, c.count, c.duration)
	}
	return fmt.Sprintf("%s for %s", what, c.duration)
}
