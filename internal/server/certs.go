package server

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// maxPEMFileBytes caps how much of a certificate or key file is read. A chain of
// a few certificates is a few KiB.
const maxPEMFileBytes = 1 << 20

// reloader holds a value parsed from files and parses them again when their
// contents change. A reload that fails keeps the current value.
type reloader[T any] struct {
	what  string // for messages: "serving certificate"
	files []string
	parse func(contents [][]byte) (*T, error)
	log   *zap.Logger

	cur atomic.Pointer[T]

	mu  sync.Mutex        // serializes Reload
	sum [sha256.Size]byte // hash of the files behind cur
}

// Reload reads the files and, when their contents differ from the current
// value's, parses them and swaps the value in. It reports whether it swapped.
// On error the current value stays in place.
func (r *reloader[T]) Reload() (bool, error) {
	h := sha256.New()
	contents := make([][]byte, len(r.files))
	for i, path := range r.files {
		b, err := readLimited(path)
		if err != nil {
			return false, err
		}
		contents[i] = b
		h.Write(b)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur.Load() != nil && sum == r.sum {
		return false, nil
	}
	v, err := r.parse(contents)
	if err != nil {
		return false, err
	}
	r.sum = sum
	r.cur.Store(v)
	return true, nil
}

// Watch reloads every interval until ctx is done. A failure is logged once
// until a reload succeeds again, so a broken file does not log at every tick.
func (r *reloader[T]) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, err := r.Reload()
		switch {
		case err == nil:
			lastErr = ""
		case err.Error() != lastErr:
			lastErr = err.Error()
			r.log.Error("reload "+r.what+"; keeping the current one", zap.Error(err))
		}
	}
}

// CertSource serves a TLS certificate and key read from two files and reloads
// them when their contents change. A reload that fails keeps the current pair.
type CertSource struct {
	reloader[tls.Certificate]
}

// NewCertSource loads the pair from certFile and keyFile. It fails when the
// files cannot be read or do not hold a matching certificate and key.
func NewCertSource(certFile, keyFile string, log *zap.Logger) (*CertSource, error) {
	s := &CertSource{reloader[tls.Certificate]{what: "serving certificate", files: []string{certFile, keyFile}, log: log}}
	s.parse = func(b [][]byte) (*tls.Certificate, error) {
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
	if _, err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// GetCertificate is a tls.Config.GetCertificate function that returns the
// current pair.
func (s *CertSource) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c := s.cur.Load()
	if c == nil {
		return nil, errors.New("no serving certificate loaded")
	}
	return c, nil
}

// Ready reports whether a pair is loaded and its leaf certificate is valid now.
func (s *CertSource) Ready() bool {
	c := s.cur.Load()
	if c == nil {
		return false
	}
	now := time.Now()
	return !now.Before(c.Leaf.NotBefore) && now.Before(c.Leaf.NotAfter)
}

// NotAfter returns when the current leaf certificate expires, or the zero time
// when none is loaded.
func (s *CertSource) NotAfter() time.Time {
	if c := s.cur.Load(); c != nil {
		return c.Leaf.NotAfter
	}
	return time.Time{}
}

// CAPool serves the CA certificates of a PEM bundle and reloads them when the
// file changes. A reload that fails keeps the current pool.
type CAPool struct {
	reloader[x509.CertPool]
}

// NewCAPool loads the bundle in file. It fails when the file cannot be read or
// holds no certificate, or anything but certificates.
func NewCAPool(file string, log *zap.Logger) (*CAPool, error) {
	p := &CAPool{reloader[x509.CertPool]{what: "client CA bundle", files: []string{file}, log: log}}
	p.parse = func(b [][]byte) (*x509.CertPool, error) {
		pool, subjects, err := parseCABundle(b[0])
		if err != nil {
			return nil, fmt.Errorf("load client CA bundle %q: %w", file, err)
		}
		log.Info("client CA bundle loaded", zap.Strings("subjects", subjects))
		return pool, nil
	}
	if _, err := p.Reload(); err != nil {
		return nil, err
	}
	return p, nil
}

// Pool returns the current pool. Callers must not change it.
func (p *CAPool) Pool() *x509.CertPool { return p.cur.Load() }

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

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPEMFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %q: %w", path, err)
	}
	if len(b) > maxPEMFileBytes {
		return nil, fmt.Errorf("%q is larger than %d bytes", path, maxPEMFileBytes)
	}
	return b, nil
}
