// Command writepath measures the whole write path of a Secret on a real
// control plane: the time of a Secret CREATE through kube-apiserver (etcd with
// encryption at rest, the webhook over TLS) with (a) no webhook registered, (b)
// the webhook registered and a Secret without JWE values, which the
// matchConditions keep from the webhook, and (c) a Secret with one fresh
// RSA-2048 JWE value, which costs the webhook one RSA decrypt. One RSA-2048
// decrypt is timed in the same run as the baseline. The scenarios take turns
// over many short rounds, so that a change in the machine's load spreads over
// all of them. `make bench` runs it and puts its table in BENCHMARKS.md.
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/local"
	"github.com/jwe-webhook/jwe-webhook/test/e2e/harness"
)

// namespace holds the Secrets the run creates.
const namespace = "bench"

// Targets of the write path.
const (
	targetPlain = 1.05 // (b) ÷ (a)
	targetJWE   = 3.0  // ((c) − (a)) ÷ one RSA-2048 decrypt
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "writepath: %v\n", err)
		os.Exit(1)
	}
}

type options struct {
	n, rounds, warmup int
	manifest          string
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("writepath", flag.ContinueOnError)
	var o options
	fs.IntVar(&o.n, "n", 50, "timed CREATEs per scenario and round")
	fs.IntVar(&o.rounds, "rounds", 12, "rounds; each runs every scenario once, every other one in reverse order")
	fs.IntVar(&o.warmup, "warmup", 20, "untimed CREATEs per scenario before the first round")
	fs.StringVar(&o.manifest, "webhook-manifest", "../../manifests/base/mutatingwebhookconfiguration.yaml", "the MutatingWebhookConfiguration to register")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.n < 1 || o.rounds < 1 || o.warmup < 0 {
		return errors.New("-n and -rounds must be at least 1, -warmup at least 0")
	}
	bins, err := harness.BinariesFromEnv()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "jwe-webhook-writepath-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "writepath: "+format+"\n", a...) }
	c, err := harness.Start(ctx, harness.Config{Dir: dir, Bins: bins, WebhookManifest: o.manifest, Logf: logf})
	if err != nil {
		return err
	}
	defer c.Stop()
	res, err := measure(ctx, c, o, logf)
	if err != nil {
		return fmt.Errorf("%w\n%s", err, c.Tails(20))
	}
	res.print(stdout, o)
	return nil
}

// scenario is one kind of CREATE, timed.
type scenario struct {
	tag, name  string
	registered bool
	// value returns the value of the i-th Secret.
	value   func(i int) (string, error)
	made    int
	samples []time.Duration
}

func measure(ctx context.Context, c *harness.Cluster, o options, logf func(string, ...any)) (*result, error) {
	if _, err := c.Kubectl(ctx, nil, "create", "namespace", namespace); err != nil {
		return nil, err
	}
	keys, err := local.LoadPublicFile(c.Key.PublicFile)
	if err != nil {
		return nil, err
	}
	plain := func(int) (string, error) { return "plain value, not a JWE", nil }
	fresh := func(i int) (string, error) {
		return jwe.Encrypt(fmt.Appendf(nil, "value %d", i), jwe.Scope{Namespace: namespace}, "", keys...)
	}
	scenarios := []*scenario{
		{tag: "a", name: "(a) no webhook registered", value: plain},
		{tag: "b", name: "(b) webhook registered, plain Secret", registered: true, value: plain},
		{tag: "c", name: "(c) webhook registered, one fresh JWE (RSA-2048)", registered: true, value: fresh},
	}
	rsaBefore, err := rsaDecrypts(100)
	if err != nil {
		return nil, err
	}
	registered := true
	for round := range o.rounds {
		// Every other round backwards, so that no scenario always follows
		// a change of registration.
		order := slices.Clone(scenarios)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, s := range order {
			if s.registered != registered {
				if err := setRegistered(ctx, c, s.registered); err != nil {
					return nil, err
				}
				registered = s.registered
			}
			n := o.n
			if round == 0 {
				n += o.warmup
			}
			logf("round %d/%d: %d CREATEs, %s", round+1, o.rounds, n, s.name)
			times, err := creates(ctx, c, s, n)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.name, err)
			}
			if round == 0 {
				times = times[o.warmup:]
			}
			s.samples = append(s.samples, times...)
		}
	}
	rsaAfter, err := rsaDecrypts(100)
	if err != nil {
		return nil, err
	}
	return &result{scenarios: scenarios, rsa: median(append(rsaBefore, rsaAfter...))}, nil
}

func setRegistered(ctx context.Context, c *harness.Cluster, on bool) error {
	if on {
		return c.RegisterWebhook(ctx)
	}
	return c.UnregisterWebhook(ctx)
}

// secrets returns the next n Secret bodies of s, each with a new name and
// one data value.
func (s *scenario) secrets(n int) ([]string, error) {
	bodies := make([]string, n)
	for i := range bodies {
		v, err := s.value(s.made)
		if err != nil {
			return nil, err
		}
		bodies[i] = fmt.Sprintf(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"%s-%d"},"data":{"value":%q}}`,
			s.tag, s.made, base64.StdEncoding.EncodeToString([]byte(v)))
		s.made++
	}
	return bodies, nil
}

// creates prepares n bodies (untimed), then times each CREATE.
func creates(ctx context.Context, c *harness.Cluster, s *scenario, n int) ([]time.Duration, error) {
	bodies, err := s.secrets(n)
	if err != nil {
		return nil, err
	}
	times := make([]time.Duration, 0, n)
	for _, body := range bodies {
		start := time.Now()
		code, resp, err := c.Post(ctx, "/api/v1/namespaces/"+namespace+"/secrets", body)
		d := time.Since(start)
		if err != nil {
			return nil, err
		}
		if code != http.StatusCreated {
			return nil, fmt.Errorf("CREATE: HTTP %d: %.300s", code, resp)
		}
		times = append(times, d)
	}
	return times, nil
}

// rsaDecrypts times n RSA-OAEP-SHA256 decrypts of a 32-byte content key with
// a new RSA-2048 key, what the webhook does for one fresh value.
func rsaDecrypts(n int) ([]time.Duration, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	cek := make([]byte, 32)
	rand.Read(cek) // never fails (Go 1.24+)
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &key.PublicKey, cek, nil)
	if err != nil {
		return nil, err
	}
	times := make([]time.Duration, n)
	for i := range times {
		start := time.Now()
		if _, err := rsa.DecryptOAEP(sha256.New(), nil, key, ct, nil); err != nil {
			return nil, err
		}
		times[i] = time.Since(start)
	}
	return times, nil
}

func median(d []time.Duration) time.Duration { return percentile(d, 50) }

// percentile is the p-th percentile of d, nearest rank.
func percentile(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p+99)/100 - 1
	return s[max(i, 0)]
}

type result struct {
	scenarios []*scenario
	rsa       time.Duration
}

func (r *result) print(w io.Writer, o options) {
	a, b, c := r.scenarios[0], r.scenarios[1], r.scenarios[2]
	fmt.Fprintln(w, "| scenario | CREATEs | p50 | p90 | p50 ÷ (a) | p90 ÷ (a) |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: |")
	for _, s := range r.scenarios {
		fmt.Fprintf(w, "| %s | %d | %s | %s | %.2f | %.2f |\n", s.name, len(s.samples),
			ms(percentile(s.samples, 50)), ms(percentile(s.samples, 90)),
			ratio(percentile(s.samples, 50), percentile(a.samples, 50)),
			ratio(percentile(s.samples, 90), percentile(a.samples, 90)))
	}
	fmt.Fprintf(w, "\nBaseline: one RSA-2048 decrypt (RSA-OAEP-256, in this process) %s, median of 200.\n", ms(r.rsa))
	fmt.Fprintf(w, "%d rounds of %d CREATEs per scenario, taking turns (every other round in reverse), after %d untimed; one client, one kept-alive connection.\n\n",
		o.rounds, o.n, o.warmup)
	for _, q := range []int{50, 90} {
		pa, pb, pc := percentile(a.samples, q), percentile(b.samples, q), percentile(c.samples, q)
		fmt.Fprintf(w, "- p%d: (b) ÷ (a) = %.3f (target ≤ %.2f: %s); ((c) − (a)) ÷ RSA decrypt = %.2f (target ≤ %.0f: %s)\n", q,
			ratio(pb, pa), targetPlain, verdict(ratio(pb, pa) <= targetPlain),
			ratio(pc-pa, r.rsa), targetJWE, verdict(ratio(pc-pa, r.rsa) <= targetJWE))
	}
}

func ratio(x, y time.Duration) float64 { return float64(x) / float64(y) }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}
