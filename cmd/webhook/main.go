// Command webhook is the jwe-webhook mutating admission webhook: it decrypts
// JWE values in Secrets as the kube-apiserver admits them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/jwe-webhook/jwe-webhook/internal/admission"
	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/keyconfig"
	"github.com/jwe-webhook/jwe-webhook/internal/metrics"
	"github.com/jwe-webhook/jwe-webhook/internal/server"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3"; when
// it is not, the module version Go stamped into the binary is used.
var version string

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "webhook: %v\n", err)
		os.Exit(1)
	}
}

const usage = `Usage: webhook --tls-cert-file FILE --tls-key-file FILE (--key-config FILE | --key-file FILE) [options]
       webhook --version    print the version (to stderr, as --help) and exit

Serves the jwe-webhook mutating admission webhook over HTTPS: POST /mutate
(AdmissionReview), GET /healthz, GET /readyz; and over plain HTTP on the
metrics port GET /metrics (Prometheus), /healthz and /readyz for the kubelet.

Every flag can also be set with the environment variable shown; a flag given
on the command line wins over the variable, and the variable over the default.

  --listen ADDR                 address to serve HTTPS on (default ":8443")
                                $JWE_WEBHOOK_LISTEN
  --tls-cert-file FILE          PEM serving certificate chain; reloaded when it
                                changes (required) $JWE_WEBHOOK_TLS_CERT_FILE
  --tls-key-file FILE           PEM private key of the serving certificate
                                (required) $JWE_WEBHOOK_TLS_KEY_FILE
  --client-ca-file FILE         PEM bundle of CAs: only clients (the
                                kube-apiserver) with a certificate they issued
                                may connect; reloaded when it changes. Without
                                it anyone who reaches the port can have values
                                decrypted $JWE_WEBHOOK_CLIENT_CA_FILE
  --client-allowed-names NAMES  comma-separated names, one of which the client
                                certificate must carry as DNS SAN or subject
                                CN (default: any certificate from the CAs)
                                $JWE_WEBHOOK_CLIENT_ALLOWED_NAMES
  --metrics-listen ADDR         plain-HTTP address for /metrics, /healthz and
                                /readyz; --metrics-listen= turns it off
                                (default ":9090") $JWE_WEBHOOK_METRICS_LISTEN
  --key-config FILE             key configuration (YAML): keys in Cloud KMS,
                                Vault or local files, each optionally limited
                                to namespaces; reloaded when it changes
                                $JWE_WEBHOOK_KEY_CONFIG
  --key-file FILE               local private key file, PEM or JWK / JWK Set,
                                for the simple case without --key-config;
                                repeat the flag or separate files with commas
                                $JWE_WEBHOOK_KEY_FILE
  --key-config-reload-interval DURATION
                                how often --key-config is checked for changes
                                (default 10s) $JWE_WEBHOOK_KEY_CONFIG_RELOAD_INTERVAL
  --key-timeout DURATION        deadline for one key service call; below
                                --request-timeout (default 5/8 of it: 5s)
                                $JWE_WEBHOOK_KEY_TIMEOUT
  --cache-size N                content keys kept in memory after an unwrap,
                                so re-applied Secrets need no key service
                                call; 0 turns the cache off (default 10000)
                                $JWE_WEBHOOK_CACHE_SIZE
  --cache-ttl DURATION          how long a content key is kept (default 1h);
                                also how long a revoked key may still serve
                                values it opened before (see docs/security.md)
                                $JWE_WEBHOOK_CACHE_TTL
  --max-key-calls N             key-service calls in flight at once, every
                                key together; past it a value is refused at
                                once as "overloaded, retry" (429) (default 64)
                                $JWE_WEBHOOK_MAX_KEY_CALLS
  --negative-cache-ttl DURATION how long an answer "no such key (version)"
                                from a key service is remembered, so values
                                repeating a made-up kid cost one call; 0 turns
                                it off (default 5s)
                                $JWE_WEBHOOK_NEGATIVE_CACHE_TTL
  --log-level LEVEL             debug, info, warn or error (default info)
                                $JWE_WEBHOOK_LOG_LEVEL
  --request-timeout DURATION    deadline for one review, key service calls
                                included; keep it below the webhook's
                                timeoutSeconds and under 15s (default 8s)
                                $JWE_WEBHOOK_REQUEST_TIMEOUT
  --max-request-bytes N         largest AdmissionReview body accepted; larger
                                ones get 413 (default 8388608, 8 MiB)
                                $JWE_WEBHOOK_MAX_REQUEST_BYTES
  --cert-reload-interval DURATION
                                how often the serving certificate files are
                                checked for changes (default 10s)
                                $JWE_WEBHOOK_CERT_RELOAD_INTERVAL
  --shutdown-timeout DURATION   how long in-flight requests may finish after
                                SIGTERM (default 20s)
                                $JWE_WEBHOOK_SHUTDOWN_TIMEOUT
  --concurrency N               values of one Secret unwrapped at once
                                (default 32) $JWE_WEBHOOK_CONCURRENCY
  --max-values-per-secret N     JWE values one Secret may hold; a Secret with
                                more is refused (400) before any key service
                                call (default 256)
                                $JWE_WEBHOOK_MAX_VALUES_PER_SECRET
  --max-recipients N            recipients one JWE value may have, at most 32
                                (default 16) $JWE_WEBHOOK_MAX_RECIPIENTS
  --max-jwe-bytes N             bytes the JWE values of one Secret may add up
                                to (default 1048576, 1 MiB)
                                $JWE_WEBHOOK_MAX_JWE_BYTES
  --max-reviews-in-flight N     Secret reviews handled at once; past it a
                                review is refused at once with 429 and
                                Retry-After: 1, which kubectl and other
                                client-go clients retry (default 64)
                                $JWE_WEBHOOK_MAX_REVIEWS_IN_FLIGHT

Examples:
  webhook --tls-cert-file /tls/tls.crt --tls-key-file /tls/tls.key \
      --client-ca-file /client-ca/ca.crt --client-allowed-names kube-apiserver \
      --key-file /keys/cluster-a.jwk
  webhook --tls-cert-file /tls/tls.crt --tls-key-file /tls/tls.key \
      --client-ca-file /client-ca/ca.crt --key-config /etc/jwe-webhook/keys.yaml
`

// config is the command's configuration after flags, environment and defaults.
type config struct {
	listen             string
	tlsCertFile        string
	tlsKeyFile         string
	clientCAFile       string
	clientAllowedNames []string
	metricsListen      string
	keyFiles           []string
	keyConfig          string
	keyConfigInterval  time.Duration
	keyTimeout         time.Duration
	cacheSize          int
	cacheTTL           time.Duration
	maxKeyCalls        int
	negativeCacheTTL   time.Duration
	logLevel           zapcore.Level
	requestTimeout     time.Duration
	maxRequestBytes    int64
	certReloadInterval time.Duration
	shutdownTimeout    time.Duration
	concurrency        int
	limits             admission.Limits
	showVersion        bool
}

// errVersion is parseConfig's answer to --version.
var errVersion = errors.New("version requested")

// stringList is a repeatable flag; each value may hold several comma-separated
// items, so one environment variable can name several files.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			*l = append(*l, item)
		}
	}
	return nil
}

// levelFlag accepts the levels the webhook logs at.
type levelFlag struct{ l *zapcore.Level }

func (f levelFlag) String() string {
	if f.l == nil {
		return ""
	}
	return f.l.String()
}

func (f levelFlag) Set(v string) error {
	switch v {
	case "debug", "info", "warn", "error":
		return f.l.UnmarshalText([]byte(v))
	}
	return errors.New("want debug, info, warn or error")
}

// envName is the environment variable for flag name: "tls-cert-file" →
// "JWE_WEBHOOK_TLS_CERT_FILE".
func envName(name string) string {
	return "JWE_WEBHOOK_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// parseConfig reads args, then getenv for the flags args did not set, and
// checks the result.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	c := config{logLevel: zapcore.InfoLevel}
	fs := flag.NewFlagSet("webhook", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	fs.StringVar(&c.listen, "listen", ":8443", "")
	fs.StringVar(&c.tlsCertFile, "tls-cert-file", "", "")
	fs.StringVar(&c.tlsKeyFile, "tls-key-file", "", "")
	fs.StringVar(&c.clientCAFile, "client-ca-file", "", "")
	fs.Var((*stringList)(&c.clientAllowedNames), "client-allowed-names", "")
	fs.StringVar(&c.metricsListen, "metrics-listen", ":9090", "")
	fs.Var((*stringList)(&c.keyFiles), "key-file", "")
	fs.StringVar(&c.keyConfig, "key-config", "", "")
	fs.DurationVar(&c.keyConfigInterval, "key-config-reload-interval", 10*time.Second, "")
	fs.DurationVar(&c.keyTimeout, "key-timeout", 0, "")
	fs.IntVar(&c.cacheSize, "cache-size", 10000, "")
	fs.DurationVar(&c.cacheTTL, "cache-ttl", time.Hour, "")
	fs.IntVar(&c.maxKeyCalls, "max-key-calls", 64, "")
	fs.DurationVar(&c.negativeCacheTTL, "negative-cache-ttl", 5*time.Second, "")
	fs.Var(levelFlag{&c.logLevel}, "log-level", "")
	fs.DurationVar(&c.requestTimeout, "request-timeout", server.DefaultRequestTimeout, "")
	fs.Int64Var(&c.maxRequestBytes, "max-request-bytes", server.DefaultMaxRequestBytes, "")
	fs.DurationVar(&c.certReloadInterval, "cert-reload-interval", server.DefaultCertReloadInterval, "")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", server.DefaultShutdownTimeout, "")
	fs.IntVar(&c.concurrency, "concurrency", 32, "")
	fs.IntVar(&c.limits.MaxValues, "max-values-per-secret", admission.DefaultMaxValues, "")
	fs.IntVar(&c.limits.MaxRecipients, "max-recipients", jwe.MaxRecipients, "")
	fs.IntVar(&c.limits.MaxJWEBytes, "max-jwe-bytes", admission.DefaultMaxJWEBytes, "")
	fs.IntVar(&c.limits.MaxReviews, "max-reviews-in-flight", admission.DefaultMaxReviews, "")
	fs.BoolVar(&c.showVersion, "version", false, "")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.showVersion {
		return c, errVersion
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}

	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := envName(f.Name)
		if v := getenv(name); v != "" && !given[f.Name] && envErr == nil && f.Name != "version" {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("invalid value %q for $%s: %w", v, name, err)
			}
		}
	})
	if envErr != nil {
		return c, envErr
	}
	if c.keyTimeout == 0 {
		c.keyTimeout = c.requestTimeout * 5 / 8
	}
	return c, c.check()
}

func (c config) check() error {
	switch {
	case c.tlsCertFile == "" || c.tlsKeyFile == "":
		return errors.New("--tls-cert-file and --tls-key-file are required (see --help)")
	case len(c.clientAllowedNames) > 0 && c.clientCAFile == "":
		return errors.New("--client-allowed-names needs --client-ca-file: names are checked on certificates the CAs issued")
	case len(c.keyFiles) == 0 && c.keyConfig == "":
		return errors.New("--key-config or at least one --key-file is required (see --help)")
	case len(c.keyFiles) > 0 && c.keyConfig != "":
		return errors.New("give --key-config or --key-file, not both; the key configuration can list local key files")
	case c.keyConfigInterval <= 0:
		return errors.New("--key-config-reload-interval must be positive")
	case c.keyTimeout <= 0 || c.keyTimeout >= c.requestTimeout:
		return fmt.Errorf("--key-timeout must be positive and below --request-timeout (%s), so that a slow key service is reported as such", c.requestTimeout)
	case c.cacheSize < 0 || c.cacheSize > 0 && c.cacheTTL <= 0:
		return errors.New("--cache-size must be 0 (off) or more, with a positive --cache-ttl")
	case c.maxKeyCalls < 1:
		return errors.New("--max-key-calls must be at least 1")
	case c.negativeCacheTTL < 0:
		return errors.New("--negative-cache-ttl must be 0 (off) or positive")
	case c.requestTimeout <= 0:
		return errors.New("--request-timeout must be positive")
	case c.maxRequestBytes <= 0:
		return errors.New("--max-request-bytes must be positive")
	case c.certReloadInterval <= 0:
		return errors.New("--cert-reload-interval must be positive")
	case c.shutdownTimeout <= 0:
		return errors.New("--shutdown-timeout must be positive")
	case c.concurrency < 1:
		return errors.New("--concurrency must be at least 1")
	case c.limits.MaxValues < 1, c.limits.MaxJWEBytes < 1, c.limits.MaxReviews < 1:
		return errors.New("--max-values-per-secret, --max-jwe-bytes and --max-reviews-in-flight must be at least 1")
	case c.limits.MaxRecipients < 1 || c.limits.MaxRecipients > jwe.RecipientsCeiling:
		return fmt.Errorf("--max-recipients must be between 1 and %d", jwe.RecipientsCeiling)
	}
	return nil
}

// negativeCacheSize bounds the key IDs the negative cache remembers: made-up
// key IDs are chosen by whoever writes Secrets.
const negativeCacheSize = 1000

// run is the whole command, with its environment passed in so tests can drive it.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	c, err := parseConfig(args, getenv, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return nil
	case errors.Is(err, errVersion):
		_, err = fmt.Fprintf(stderr, "webhook %s\n", buildVersion())
		return err
	}
	if err != nil {
		return err
	}

	log := newLogger(c.logLevel, stderr)
	defer log.Sync() //nolint:errcheck // nothing to do when stderr cannot sync

	v := buildVersion()
	m := metrics.New(v)
	chain := kms.Options{Timeout: c.keyTimeout, Observer: m, Limit: kms.NewCallLimit(c.maxKeyCalls)}
	if c.negativeCacheTTL > 0 {
		chain.Negative = kms.NewNegativeCache(negativeCacheSize, c.negativeCacheTTL)
	}
	if c.cacheSize > 0 {
		chain.Cache = kms.NewCache(c.cacheSize, c.cacheTTL, c.keyTimeout)
		m.CacheStats(chain.Cache.Stats)
	}
	opts := keyconfig.Options{Keyring: chain, Log: log}
	keys, err := openKeys(ctx, c, opts)
	if err != nil {
		return err
	}
	defer keys.Close()

	rev := admission.NewReviewer(keys, admission.Options{Concurrency: c.concurrency, Limits: c.limits})
	cfg := server.Config{
		Addr:               c.listen,
		CertFile:           c.tlsCertFile,
		KeyFile:            c.tlsKeyFile,
		ClientCAFile:       c.clientCAFile,
		ClientAllowedNames: c.clientAllowedNames,
		MetricsAddr:        c.metricsListen,
		Metrics:            m.Handler(),
		Keys:               server.KeySet(keys.PublicKeys, log),
		MaxRequestBytes:    c.maxRequestBytes,
		RequestTimeout:     c.requestTimeout,
		CertReloadInterval: c.certReloadInterval,
		ShutdownTimeout:    c.shutdownTimeout,
	}
	reportKeys(&cfg, m, keys, c.keyConfig)
	srv, err := server.New(cfg, m.Reviewer(rev), log)
	if err != nil {
		return err
	}
	m.CertExpiry(srv.CertNotAfter)
	if c.clientCAFile == "" {
		log.Warn("client certificates are not verified: any client that reaches the port can use the webhook to decrypt: set --client-ca-file")
	}
	log.Info("starting webhook", zap.String("version", v), zap.String("listen", c.listen),
		zap.String("metricsListen", c.metricsListen), zap.Strings("kids", keys.KeyIDs()),
		zap.Int("cacheSize", c.cacheSize), zap.Duration("cacheTTL", c.cacheTTL))
	return srv.Run(ctx)
}

// buildVersion is version, else the main module's version, else "dev".
func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// keySource is the keyring the webhook unwraps with.
type keySource interface {
	admission.Unwrapper
	KeyIDs() []string
	PublicKeys(ctx context.Context) ([]jwe.PublicKey, error)
	Close()
}

// openKeys opens the key configuration file and watches it, or builds the
// keyring of the --key-file files.
func openKeys(ctx context.Context, c config, opts keyconfig.Options) (keySource, error) {
	if c.keyConfig != "" {
		src, err := keyconfig.Open(ctx, c.keyConfig, opts)
		if err != nil {
			return nil, fmt.Errorf("key configuration: %w", err)
		}
		go src.Watch(ctx, c.keyConfigInterval)
		return src, nil
	}
	cfg := &keyconfig.File{}
	for _, path := range c.keyFiles {
		cfg.Keys = append(cfg.Keys, keyconfig.Key{Provider: "local", Local: &keyconfig.Local{File: path}})
	}
	keys, err := keyconfig.Build(ctx, cfg, opts)
	if err != nil {
		return nil, fmt.Errorf("load local keys: %w", err)
	}
	return keys, nil
}

// newLogger returns a production JSON logger at level writing to w. Unlike
// zap.NewProduction it does not sample: every review's log line is kept.
func newLogger(level zapcore.Level, w io.Writer) *zap.Logger {
	sink := zapcore.Lock(zapcore.AddSync(w))
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), sink, level)
	return zap.New(core, zap.AddCaller(), zap.ErrorOutput(sink))
}
