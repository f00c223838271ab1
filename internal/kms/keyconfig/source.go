package keyconfig

import (
	"bytes"
	"context"
	"crypto/sha256"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
)

// closeDelay is how long a replaced keyring's clients stay open, so that
// reviews already using it finish.
const closeDelay = time.Minute

// Source is the keyring of a key configuration file, rebuilt when the file
// changes. A file that no longer builds leaves the last good keyring in place
// and is reported by Err until it is fixed.
type Source struct {
	path string
	opts Options
	log  *zap.Logger

	current atomic.Pointer[Keys]
	mu      sync.Mutex // guards sum, err, loaded
	sum     [sha256.Size]byte
	err     error
	loaded  time.Time // when the keyring in use was built
}

// Status is what the last reload of a key configuration file did.
type Status struct {
	// Err is the last reload's error: nil while the keyring in use is the
	// one the file on disk describes.
	Err error
	// Loaded is when the keyring in use was built from the file.
	Loaded time.Time
}

// Open builds the keyring of the file at path; it fails when the file does.
func Open(ctx context.Context, path string, opts Options) (*Source, error) {
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	s := &Source{path: path, opts: opts, log: opts.Log}
	if _, err := s.Reload(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Unwrap unwraps with the current keyring.
func (s *Source) Unwrap(ctx context.Context, namespace string, k jwe.Recipient) ([]byte, error) {
	return s.current.Load().Unwrap(ctx, namespace, k)
}

// KeyIDs are the current keyring's key IDs.
func (s *Source) KeyIDs() []string { return s.current.Load().KeyIDs() }

// PublicKeys returns the public keys of the keys in use.
func (s *Source) PublicKeys(ctx context.Context) ([]jwe.PublicKey, error) {
	return s.current.Load().PublicKeys(ctx)
}

// Err is the last reload's error: nil while the file on disk is the one in
// use.
func (s *Source) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Status is the last reload's outcome.
func (s *Source) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Status{Err: s.err, Loaded: s.loaded}
}

// Reload reads the file and, when its content changed, builds and swaps in a
// new keyring. It reports whether it swapped. A file back to the content of
// the keyring in use clears the last error. The content keys that a key no
// longer configured unwrapped are dropped from the cache at once.
func (s *Source) Reload(ctx context.Context) (bool, error) {
	data, err := readFile(s.path)
	sum := sha256.Sum256(data)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && s.current.Load() != nil && bytes.Equal(sum[:], s.sum[:]) {
		s.err = nil
		return false, nil
	}
	var keys *Keys
	if err == nil {
		var cfg *File
		if cfg, err = parseFile(s.path, data); err == nil {
			keys, err = Build(ctx, cfg, s.opts)
		}
	}
	if err != nil {
		s.err = err
		return false, err
	}
	s.sum, s.err, s.loaded = sum, nil, time.Now()
	if old := s.current.Swap(keys); old != nil {
		s.forgetRemoved(old.KeyIDs(), keys.KeyIDs())
		time.AfterFunc(closeDelay, old.Close)
	}
	return true, nil
}

// forgetRemoved drops from the cache the content keys of the keys in old
// that are not in current.
func (s *Source) forgetRemoved(old, current []string) {
	cache := s.opts.Keyring.Cache
	if cache == nil {
		return
	}
	for _, kid := range old {
		if !slices.Contains(current, kid) {
			cache.Forget(kid)
			s.log.Info("key removed from the configuration; its cached content keys are dropped", zap.String("kid", kid))
		}
	}
}

// Watch reloads the file every interval until ctx ends, logging each change
// and each failure once.
func (s *Source) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		swapped, err := s.Reload(ctx)
		switch {
		case err != nil && err.Error() != lastErr:
			s.log.Error("key configuration not reloaded; the previous keys stay in use", zap.String("file", s.path), zap.Error(err))
			lastErr = err.Error()
		case err == nil && swapped:
			s.log.Info("key configuration reloaded", zap.String("file", s.path), zap.Strings("kids", s.KeyIDs()))
			lastErr = ""
		case err == nil:
			lastErr = ""
		}
	}
}

// Close releases the current keyring's clients.
func (s *Source) Close() { s.current.Load().Close() }
