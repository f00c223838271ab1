// Package server is the webhook's HTTPS front: the chi router with /mutate,
// /healthz and /readyz, request limits and timeouts, TLS with a serving
// certificate that is reloaded when its files change, optional client
// certificate verification against a reloaded CA bundle, and a plain-HTTP
// port for /metrics and the kubelet's probes.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	admissionv1 "k8s.io/api/admission/v1"
)

// Defaults for the zero fields of Config.
const (
	// DefaultMaxRequestBytes caps an AdmissionReview body. A Secret's data is at
	// most 1 MiB, which grows by a third as base64 in JSON; an UPDATE carries
	// both object and oldObject, and managedFields and annotations (such as
	// last-applied-configuration, another copy of the data) add more. 8 MiB
	// leaves room for all of that and still bounds memory per request.
	DefaultMaxRequestBytes = 8 << 20
	// DefaultRequestTimeout bounds a review, KMS calls included. The apiserver
	// waits at most timeoutSeconds (≤ 30, 10 in our manifests); answering
	// before it gives up turns a slow KMS into a clear denial.
	DefaultRequestTimeout = 8 * time.Second
	// DefaultCertReloadInterval is how often the certificate files are polled.
	DefaultCertReloadInterval = 10 * time.Second
	// DefaultShutdownTimeout bounds the graceful drain after the context ends.
	DefaultShutdownTimeout = 20 * time.Second
)

// HTTP server limits. The apiserver sends small headers and one review per
// request; these only bound slow or idle clients.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second
	writeTimeout      = 15 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 64 << 10
)

// Config configures a Server. Zero durations and sizes take the defaults above.
type Config struct {
	// Addr is the TCP address Run listens on, e.g. ":8443".
	Addr string
	// CertFile and KeyFile hold the PEM serving certificate (chain) and key.
	CertFile, KeyFile string
	// MaxRequestBytes caps the /mutate body; larger bodies get 413.
	MaxRequestBytes int64
	// RequestTimeout is the deadline on the context passed to the Reviewer.
	// It must be shorter than the 15s write timeout.
	RequestTimeout time.Duration
	// CertReloadInterval is how often CertFile and KeyFile are checked for changes.
	CertReloadInterval time.Duration
	// ShutdownTimeout bounds the graceful shutdown once Run's context ends.
	ShutdownTimeout time.Duration

	// ClientCAFile, when set, is a PEM bundle of CA certificates: every
	// client must present a certificate for client authentication issued by
	// one of them, or the TLS handshake fails. It is reloaded like CertFile.
	ClientCAFile string
	// ClientAllowedNames, when not empty, limits clients to certificates with
	// one of these names as a DNS SAN or as subject common name; others get
	// 403. It needs ClientCAFile.
	ClientAllowedNames []string

	// MetricsAddr is the plain-HTTP address Run serves /healthz, /readyz and,
	// when Metrics is set, /metrics on, e.g. ":9090". Empty: none.
	MetricsAddr string
	// Metrics serves /metrics on the metrics port.
	Metrics http.Handler
	// Keys serves /keys on the metrics port: the public keys of the
	// configured keys as a JWK Set (see KeySet).
	Keys http.Handler
	// ReadyChecks must all return nil for /readyz to succeed, besides a valid
	// serving certificate being loaded. The error text is the probe's answer.
	ReadyChecks []func() error
	// ReadyDetails, when not nil, returns lines /readyz adds to its answer,
	// ready or not: what works only in part, such as a broken file whose last
	// good version stays in use.
	ReadyDetails func() []string
}

func (c *Config) setDefaults() {
	orDefault(&c.MaxRequestBytes, DefaultMaxRequestBytes)
	orDefault(&c.RequestTimeout, DefaultRequestTimeout)
	orDefault(&c.CertReloadInterval, DefaultCertReloadInterval)
	orDefault(&c.ShutdownTimeout, DefaultShutdownTimeout)
}

// orDefault sets *v to def unless *v is positive.
func orDefault[T int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Reviewer answers one admission request. *admission.Reviewer implements it.
type Reviewer interface {
	Review(ctx context.Context, log *zap.Logger, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse
}

// Server serves the webhook over HTTPS, and the probes and metrics over plain
// HTTP on a second port.
type Server struct {
	cfg       Config
	rev       Reviewer
	log       *zap.Logger
	certs     *CertSource
	clientCAs *CAPool // nil: clients are not authenticated
	handler   http.Handler
	http      *http.Server
	metrics   *http.Server
}

// New returns a Server for cfg. It loads the serving certificate and the
// client CA bundle and fails when it cannot.
func New(cfg Config, rev Reviewer, log *zap.Logger) (*Server, error) {
	cfg.setDefaults()
	if cfg.RequestTimeout >= writeTimeout {
		return nil, fmt.Errorf("request timeout %v must be shorter than the write timeout %v", cfg.RequestTimeout, writeTimeout)
	}
	if len(cfg.ClientAllowedNames) > 0 && cfg.ClientCAFile == "" {
		return nil, errors.New("allowed client names need a client CA bundle")
	}
	certs, err := NewCertSource(cfg.CertFile, cfg.KeyFile, log.Named("certs"))
	if err != nil {
		return nil, fmt.Errorf("load serving certificate: %w", err)
	}
	s := &Server{cfg: cfg, rev: rev, log: log, certs: certs}
	if cfg.ClientCAFile != "" {
		if s.clientCAs, err = NewCAPool(cfg.ClientCAFile, log.Named("certs")); err != nil {
			return nil, err
		}
	}
	s.handler = s.routes()
	errorLog, err := zap.NewStdLogAt(log.Named("http"), zapcore.WarnLevel)
	if err != nil {
		return nil, fmt.Errorf("http error log: %w", err)
	}
	s.http = newHTTPServer(s.handler, errorLog)
	s.http.TLSConfig = s.tlsConfig()
	s.metrics = newHTTPServer(s.metricsRoutes(), errorLog)
	return s, nil
}

// newHTTPServer returns a server of h with the limits above.
func newHTTPServer(h http.Handler, errorLog *stdlog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          errorLog,
	}
}

func (s *Server) tlsConfig() *tls.Config {
	c := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: s.certs.GetCertificate,
	}
	if s.clientCAs != nil {
		// The chain is verified in VerifyConnection rather than through
		// ClientCAs so that every handshake, resumptions included, is
		// checked against the bundle as last reloaded.
		c.ClientAuth = tls.RequireAnyClientCert
		c.VerifyConnection = s.verifyClient
	}
	return c
}

// verifyClient checks that the client's certificate chains to the client CA
// bundle and may be used for client authentication.
func (s *Server) verifyClient(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("client certificate required")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots:         s.clientCAs.Pool(),
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return fmt.Errorf("verify client certificate %q: %w", cs.PeerCertificates[0].Subject.String(), err)
	}
	return nil
}

// allowedClient answers 403 to a client whose certificate, verified in the
// handshake, names none of cfg.ClientAllowedNames.
func (s *Server) allowedClient(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, "client certificate required", http.StatusForbidden)
			return
		}
		cert := r.TLS.PeerCertificates[0]
		if !slices.ContainsFunc(s.cfg.ClientAllowedNames, func(name string) bool {
			return name == cert.Subject.CommonName || slices.Contains(cert.DNSNames, name)
		}) {
			s.log.Warn("client certificate not allowed", zap.String("remote", r.RemoteAddr),
				zap.String("subject", cert.Subject.String()), zap.Strings("dnsNames", cert.DNSNames))
			http.Error(w, "client certificate not allowed", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	if len(s.cfg.ClientAllowedNames) > 0 {
		r.Use(s.allowedClient)
	}
	r.Post("/mutate", s.mutate)
	s.probes(r)
	return r
}

// metricsRoutes are the plain-HTTP port's: the probes and /metrics. They
// answer anyone, so they say nothing that needs a secret.
func (s *Server) metricsRoutes() http.Handler {
	r := chi.NewRouter()
	if s.cfg.Metrics != nil {
		r.Method(http.MethodGet, "/metrics", s.cfg.Metrics)
	}
	if s.cfg.Keys != nil {
		r.Method(http.MethodGet, "/keys", s.cfg.Keys)
	}
	s.probes(r)
	return r
}

func (s *Server) probes(r chi.Router) {
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	r.Get("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		answer, code := "ok", http.StatusOK
		if err := s.ready(); err != nil {
			answer, code = err.Error(), http.StatusServiceUnavailable
		}
		if s.cfg.ReadyDetails != nil {
			for _, line := range s.cfg.ReadyDetails() {
				answer += "\n" + line
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(code)
		io.WriteString(w, answer+"\n")
	})
}

// ready returns nil when a valid serving certificate is loaded and every
// ready check passes.
func (s *Server) ready() error {
	if !s.certs.Ready() {
		return errors.New("no valid serving certificate")
	}
	for _, check := range s.cfg.ReadyChecks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// CertNotAfter returns when the serving certificate expires, or the zero time
// when none is loaded.
func (s *Server) CertNotAfter() time.Time { return s.certs.NotAfter() }

// Handler returns the router without TLS, for tests.
func (s *Server) Handler() http.Handler { return s.handler }

// MetricsHandler returns the metrics port's router, for tests.
func (s *Server) MetricsHandler() http.Handler { return s.metrics.Handler }

// Run listens on cfg.Addr, and on cfg.MetricsAddr when set, and serves until
// ctx ends, as Serve does.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %q: %w", s.cfg.Addr, err)
	}
	var metricsLn net.Listener
	if s.cfg.MetricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", s.cfg.MetricsAddr); err != nil {
			ln.Close()
			return fmt.Errorf("listen on %q: %w", s.cfg.MetricsAddr, err)
		}
	}
	return s.Serve(ctx, ln, metricsLn)
}

// Serve serves HTTPS on ln, and the probes and metrics over plain HTTP on
// metricsLn unless it is nil, and reloads the certificate files until ctx
// ends; then it shuts down gracefully within cfg.ShutdownTimeout. It returns
// nil after a clean shutdown. A Server serves once.
func (s *Server) Serve(ctx context.Context, ln, metricsLn net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	wg.Go(func() { s.certs.Watch(watchCtx, s.cfg.CertReloadInterval) })
	if s.clientCAs != nil {
		wg.Go(func() { s.clientCAs.Watch(watchCtx, s.cfg.CertReloadInterval) })
	}

	servers := []*http.Server{s.http}
	served := make(chan error, 2)
	s.log.Info("serving", zap.Stringer("addr", ln.Addr()), zap.Bool("clientAuth", s.clientCAs != nil))
	go func() { served <- s.http.ServeTLS(ln, "", "") }()
	if metricsLn != nil {
		servers = append(servers, s.metrics)
		s.log.Info("serving probes and metrics", zap.Stringer("addr", metricsLn.Addr()))
		go func() { served <- s.metrics.Serve(metricsLn) }()
	}
	running := len(servers)
	var err error
	select {
	case serveErr := <-served:
		running--
		err = fmt.Errorf("serve: %w", serveErr)
	case <-ctx.Done():
		s.log.Info("shutting down", zap.Duration("timeout", s.cfg.ShutdownTimeout))
	}

	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	for _, srv := range servers {
		if shutErr := srv.Shutdown(shutdownCtx); shutErr != nil {
			err = errors.Join(err, fmt.Errorf("shut down: %w", shutErr))
		}
	}
	for range running {
		if serveErr := <-served; !errors.Is(serveErr, http.ErrServerClosed) {
			err = errors.Join(err, fmt.Errorf("serve: %w", serveErr))
		}
	}
	return err
}
