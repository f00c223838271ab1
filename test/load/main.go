// Command load sends AdmissionReviews to the jwe-webhook over TLS and reports
// throughput and latency, each as a ratio to a baseline measured in the same
// run. It starts the real webhook binary itself (-start) or targets a running
// one (-addr). Every run stops by itself.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "load: %v\n", err)
		os.Exit(1)
	}
}

const usage = `Usage: go run ./test/load (-start | -addr HOST:PORT -ca FILE -key FILE) [options]
       go run ./test/load -gobench FILE

Sends AdmissionReviews creating a Secret with JWE values to POST /mutate over
TLS with keep-alive, and reports admissions/s, latency percentiles and
errors (a status other than 200, a denial, a response without a patch). Each
scenario is also reported as a ratio to a baseline measured in the same run:
one rsa.DecryptOAEP with a key of the scenario's size, timed in this process
before the load starts, or the injected latency for remote.

Scenarios (-scenario, comma-separated, or all):
  cache-hit     the same 1-value Secret over and over (RSA-2048): after the
                first admission the webhook's content-key cache hits
  cold-rsa2048  a fresh 1-value Secret per request (RSA-2048): one RSA
                decrypt per admission; the Secrets are encrypted before the
                timed run, so encryption is not measured
  cold-rsa4096  the same with an RSA-4096 key
  ten-values    a fresh 10-value Secret per request (RSA-4096)
  remote        a fresh 1-value Secret per request; the webhook's key
                (--key-config) is in an in-process fake Cloud KMS that
                answers after -latency (needs -start)

Target:
  -start             start the webhook binary (-webhook) on a free loopback
                     port with a generated serving certificate and key, one
                     process per scenario; its log goes to -log
  -webhook FILE      the webhook binary (default bin/webhook); built with
                     go build ./cmd/webhook when missing
  -log FILE          the webhook's log (default: a new file in $TMPDIR,
                     named at the end of the report)
  -log-level LEVEL   the webhook's --log-level (default info, its own
                     default: one line per admission)
  -webhook-arg ARG   an extra argument for the webhook; repeat the flag
  -addr HOST:PORT    a running webhook instead (loopback only)
  -ca FILE           with -addr: PEM certificates to verify it with
  -key FILE          with -addr: the public key (PEM, JWK or JWK Set) the
                     webhook holds the private key of; values are encrypted
                     to it

Load:
  -scenario LIST     scenarios to run, in order (default cache-hit)
  -c N               concurrent requests: connections and workers (default 16)
  -rate R            open loop: start R requests per second, at most -c at
                     once; latency counts from each request's scheduled start
                     (default 0: closed loop, each worker sends as soon as
                     its last answer came)
  -d DURATION        how long each scenario runs (default 10s, at most 10m)
  -n N               stop a scenario after N admissions, if before -d
  -warmup N          untimed admissions first, to open connections and fill
                     caches (default 2 per worker)
  -latency DURATION  the fake Cloud KMS's answer delay for remote (default 20ms)
  -timeout DURATION  deadline for one request (default 10s)
  -pool N            Secrets encrypted ahead for the fresh-Secret scenarios
                     (default: enough for the fastest the machine could go);
                     a scenario that uses them up stops early and says so

Output:
  -markdown          a Markdown table instead of text, for BENCHMARKS.md
  -gobench FILE      print go test -bench output (FILE, or - for stdin) as a
                     Markdown table of medians, and do nothing else

Examples:
  go run ./test/load -start
  go run ./test/load -start -scenario all -d 5s -log-level error
  go run ./test/load -start -scenario remote -latency 50ms -c 64
  go run ./test/load -addr 127.0.0.1:8443 -ca ca.pem -key cluster.pub.pem -rate 500
`

// config is the command's configuration after flags.
type config struct {
	start       bool
	webhook     string
	logFile     string
	logLevel    string
	webhookArgs []string
	addr        string
	caFile      string
	keyFile     string

	scenarios   []scenario
	concurrency int
	rate        float64
	duration    time.Duration
	count       int
	warmup      int
	latency     time.Duration
	timeout     time.Duration
	pool        int

	markdown bool
	gobench  string
}

// maxDuration bounds a scenario, so that every run stops by itself.
const maxDuration = 10 * time.Minute

type stringList []string

func (l *stringList) String() string { return strings.Join(*l, " ") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

func parseConfig(args []string, stderr io.Writer) (config, error) {
	c := config{}
	var names string
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	fs.BoolVar(&c.start, "start", false, "")
	fs.StringVar(&c.webhook, "webhook", "bin/webhook", "")
	fs.StringVar(&c.logFile, "log", "", "")
	fs.StringVar(&c.logLevel, "log-level", "info", "")
	fs.Var((*stringList)(&c.webhookArgs), "webhook-arg", "")
	fs.StringVar(&c.addr, "addr", "", "")
	fs.StringVar(&c.caFile, "ca", "", "")
	fs.StringVar(&c.keyFile, "key", "", "")
	fs.StringVar(&names, "scenario", "cache-hit", "")
	fs.IntVar(&c.concurrency, "c", 16, "")
	fs.Float64Var(&c.rate, "rate", 0, "")
	fs.DurationVar(&c.duration, "d", 10*time.Second, "")
	fs.IntVar(&c.count, "n", 0, "")
	fs.IntVar(&c.warmup, "warmup", -1, "")
	fs.DurationVar(&c.latency, "latency", 20*time.Millisecond, "")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "")
	fs.IntVar(&c.pool, "pool", 0, "")
	fs.BoolVar(&c.markdown, "markdown", false, "")
	fs.StringVar(&c.gobench, "gobench", "", "")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (see -h)", fs.Arg(0))
	}
	if c.gobench != "" {
		return c, nil
	}
	var err error
	if c.scenarios, err = lookupScenarios(names); err != nil {
		return c, err
	}
	if c.warmup < 0 {
		c.warmup = 2 * c.concurrency
	}
	return c, c.check()
}

func (c config) check() error {
	switch {
	case c.start == (c.addr != ""):
		return errors.New("give -start or -addr (see -h)")
	case c.addr != "" && (c.caFile == "" || c.keyFile == ""):
		return errors.New("-addr needs -ca (to verify the webhook) and -key (the public key to encrypt to)")
	case c.addr != "" && !isLoopback(c.addr):
		return fmt.Errorf("-addr %q is not a loopback address; this tool only sends load to this machine", c.addr)
	case c.concurrency < 1:
		return errors.New("-c must be at least 1")
	case c.rate < 0:
		return errors.New("-rate must be positive, or 0 for a closed loop")
	case c.duration <= 0 || c.duration > maxDuration:
		return fmt.Errorf("-d must be positive and at most %s", maxDuration)
	case c.count < 0 || c.pool < 0:
		return errors.New("-n and -pool must not be negative")
	case c.latency <= 0:
		return errors.New("-latency must be positive")
	case c.timeout <= 0:
		return errors.New("-timeout must be positive")
	}
	switch c.logLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("-log-level %q: want debug, info, warn or error", c.logLevel)
	}
	for _, s := range c.scenarios {
		if s.remote && !c.start {
			return fmt.Errorf("scenario %s needs -start: the webhook must use this run's fake Cloud KMS", s.name)
		}
	}
	return nil
}

// run is the whole command, with its environment passed in so tests can drive it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseConfig(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if c.gobench != "" {
		return goBenchTable(c.gobench, stdout)
	}

	r, err := newRunner(ctx, c, stderr)
	if err != nil {
		return err
	}
	defer r.close()
	var reports []*report
	for _, s := range c.scenarios {
		rep, err := r.run(ctx, s)
		if err != nil {
			return fmt.Errorf("scenario %s: %w", s.name, err)
		}
		if !c.markdown {
			rep.writeText(stdout)
		}
		reports = append(reports, rep)
	}
	if c.markdown {
		writeMarkdown(stdout, c, reports)
	}
	if r.logPath != "" {
		fmt.Fprintf(stderr, "load: webhook log in %s\n", r.logPath)
	}
	failed := 0
	for _, rep := range reports {
		failed += rep.errors()
	}
	if failed > 0 {
		return fmt.Errorf("%d requests failed (see the report)", failed)
	}
	return nil
}
