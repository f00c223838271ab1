package server

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
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

// CertSource serves a TLS certificate and key read from two files and reloads
// them when their contents change. A reload that fails keeps the current pair.
type CertSource struct {
	certFile, keyFile string
	log               *zap.Logger

	cur atomic.Pointer[tls.Certificate]

	mu  sync.Mutex        // serializes Reload
	sum [sha256.Size]byte // hash of the files behind cur
}

// NewCertSource loads the pair from certFile and keyFile. It fails when the
// files cannot be read or do not hold a matching certificate and key.
func NewCertSource(certFile, keyFile string, log *zap.Logger) (*CertSource, error) {
	s := &CertSource{certFile: certFile, keyFile: keyFile, log: log}
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

// Reload reads both files and, when their contents differ from the current
// pair's, parses them and swaps the pair in. It reports whether it swapped. On
// error the current pair stays in place.
func (s *CertSource) Reload() (bool, error) {
	certPEM, err := readLimited(s.certFile)
	if err != nil {
		return false, err
	}
	keyPEM, err := readLimited(s.keyFile)
	if err != nil {
		return false, err
	}
	h := sha256.New()
	h.Write(certPEM)
	h.Write(keyPEM)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur.Load() != nil && sum == s.sum {
		return false, nil
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return false, fmt.Errorf("load key pair from %q and %q: %w", s.certFile, s.keyFile, err)
	}
	s.sum = sum
	s.cur.Store(&pair)
	s.log.Info("serving certificate loaded",
		zap.String("subject", pair.Leaf.Subject.String()),
		zap.Strings("dnsNames", pair.Leaf.DNSNames),
		zap.Time("notAfter", pair.Leaf.NotAfter))
	return true, nil
}

// Watch polls the files every interval and reloads them until ctx is done. A
// failure is logged once until a reload succeeds again, so a broken file does
// not log at every tick.
func (s *CertSource) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, err := s.Reload()
		switch {
		case err == nil:
			lastErr = ""
		case err.Error() != lastErr:
			lastErr = err.Error()
			s.log.Error("reload serving certificate; keeping the current one", zap.Error(err))
		}
	}
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
