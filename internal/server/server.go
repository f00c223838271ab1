// Package server is the webhook's HTTPS front: the chi router with /mutate,
// /healthz and /readyz, request limits and timeouts, and TLS with a serving
// certificate that is reloaded when its files change.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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

// Server serves the webhook over HTTPS.
type Server struct {
	cfg     Config
	rev     Reviewer
	log     *zap.Logger
	certs   *CertSource
	handler http.Handler
	http    *http.Server
}

// New returns a Server for cfg. It loads the serving certificate and fails when
// it cannot.
func New(cfg Config, rev Reviewer, log *zap.Logger) (*Server, error) {
	cfg.setDefaults()
	if cfg.RequestTimeout >= writeTimeout {
		return nil, fmt.Errorf("request timeout %v must be shorter than the write timeout %v", cfg.RequestTimeout, writeTimeout)
	}
	certs, err := NewCertSource(cfg.CertFile, cfg.KeyFile, log.Named("certs"))
	if err != nil {
		return nil, fmt.Errorf("load serving certificate: %w", err)
	}
	s := &Server{cfg: cfg, rev: rev, log: log, certs: certs}
	s.handler = s.routes()
	errorLog, err := zap.NewStdLogAt(log.Named("http"), zapcore.WarnLevel)
	if err != nil {
		return nil, fmt.Errorf("http error log: %w", err)
	}
	s.http = &http.Server{
		Handler:           s.handler,
		TLSConfig:         s.tlsConfig(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          errorLog,
	}
	return s, nil
}

func (s *Server) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: s.certs.GetCertificate,
		// Optional client-certificate verification (the apiserver presenting
		// a cert signed by a configured CA) goes here: ClientCAs and
		// ClientAuth: tls.VerifyClientCertIfGiven or RequireAndVerifyClientCert.
	}
}

func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Post("/mutate", s.mutate)
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	r.Get("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.certs.Ready() {
			http.Error(w, "no valid serving certificate", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	return r
}

// Handler returns the router without TLS, for tests.
func (s *Server) Handler() http.Handler { return s.handler }

// Run listens on cfg.Addr and serves until ctx ends, as Serve does.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %q: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves HTTPS on ln and reloads the serving certificate until ctx ends,
// then shuts down gracefully within cfg.ShutdownTimeout. It returns nil after a
// clean shutdown. A Server serves once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	wg.Go(func() { s.certs.Watch(watchCtx, s.cfg.CertReloadInterval) })

	s.log.Info("serving", zap.Stringer("addr", ln.Addr()))
	served := make(chan error, 1)
	go func() { served <- s.http.ServeTLS(ln, "", "") }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	s.log.Info("shutting down", zap.Duration("timeout", s.cfg.ShutdownTimeout))
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	err := s.http.Shutdown(shutdownCtx)
	if serveErr := <-served; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	if err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}
