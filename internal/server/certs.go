package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/jwe-webhook/jwe-webhook/internal/files"
)

// maxPEMFileBytes caps how much of a certificate or key file is read. A chain of
// a few certificates is a few KiB.
const maxPEMFileBytes = 1 << 20

// CertSource serves a TLS certificate and key read from two files and reloads
// them when their contents change. A reload that fails keeps the current pair.
type CertSource struct {
	*files.Reloader[tls.Certificate]
}

// NewCertSource loads the pair from certFile and keyFile. It fails when the
// files cannot be read or do not hold a matching certificate and key.
func NewCertSource(certFile, keyFile string, log *zap.Logger) (*CertSource, error) {
	build := func(_ context.Context, b [][]byte) (*tls.Certificate, error) {
		pair, err := tls.X509KeyPair(b[0], b[1])
		if err != nil {
			return nil, fmt.Errorf("load key pair from %q and %q: %w", certFile, keyFile, err)
		}
		log.Info("serving certificate loaded",
			zap.String("subject", pair.Leaf.Subject.String()),
			zap.Strings("dnsNames", pair.Leaf.DNSNames),
			zap.Time("notAfter", pair.Leaf.NotAfter))
		return &pair, nil
	}
	r, err := files.NewReloader(context.Background(), files.Config[tls.Certificate]{
		What: "serving certificate", Paths: []string{certFile, keyFile}, Limit: maxPEMFileBytes, Build: build, Log: log,
	})
	if err != nil {
		return nil, err
	}
	return &CertSource{r}, nil
}

// GetCertificate is a tls.Config.GetCertificate function that returns the
// current pair.
func (s *CertSource) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c := s.Load()
	if c == nil {
		return nil, errors.New("no serving certificate loaded")
	}
	return c, nil
}

// Ready reports whether a pair is loaded and its leaf certificate is valid now.
func (s *CertSource) Ready() bool {
	c := s.Load()
	if c == nil {
		return false
	}
	now := time.Now()
	return !now.Before(c.Leaf.NotBefore) && now.Before(c.Leaf.NotAfter)
}

// NotAfter returns when the current leaf certificate expires, or the zero time
// when none is loaded.
func (s *CertSource) NotAfter() time.Time {
	if c := s.Load(); c != nil {
		return c.Leaf.NotAfter
	}
	return time.Time{}
}

// CAPool serves the CA certificates of a PEM bundle and reloads them when the
// file changes. A reload that fails keeps the current pool.
type CAPool struct {
	*files.Reloader[x509.CertPool]
}

// NewCAPool loads the bundle in file. It fails when the file cannot be read or
// holds no certificate, or anything but certificates.
func NewCAPool(file string, log *zap.Logger) (*CAPool, error) {
	build := func(_ context.Context, b [][]byte) (*x509.CertPool, error) {
		pool, subjects, err := parseCABundle(b[0])
		if err != nil {
			return nil, fmt.Errorf("load client CA bundle %q: %w", file, err)
		}
		log.Info("client CA bundle loaded", zap.Strings("subjects", subjects))
		return pool, nil
	}
	r, err := files.NewReloader(context.Background(), files.Config[x509.CertPool]{
		What: "client CA bundle", Paths: []string{file}, Limit: maxPEMFileBytes, Build: build, Log: log,
	})
	if err != nil {
		return nil, err
	}
	return &CAPool{r}, nil
}

// Pool returns the current pool. Callers must not change it.
func (p *CAPool) Pool() *x509.CertPool { return p.Load() }

// parseCABundle returns the certificates of a PEM bundle as a pool, with
// their subjects for the log.
func parseCABundle(data []byte) (*x509.CertPool, []string, error) {
	pool := x509.NewCertPool()
	var subjects []string
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, nil, fmt.Errorf("PEM block %d is a %q, want only CERTIFICATE", len(subjects)+1, b.Type)
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("certificate %d: %w", len(subjects)+1, err)
		}
		pool.AddCert(cert)
		subjects = append(subjects, cert.Subject.String())
	}
	if len(subjects) == 0 {
		return nil, nil, errors.New("no PEM certificate found")
	}
	return pool, subjects, nil
}
