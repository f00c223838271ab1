package files

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Reloader holds a value built from files and builds it again when their
// contents change. A reload that fails keeps the last good value in use and
// is reported by Err until a reload succeeds or the files are back to the
// contents of the value in use. It is safe for concurrent use.
type Reloader[T any] struct {
	cfg Config[T] // defaults filled in

	cur atomic.Pointer[T]

	mu     sync.Mutex        // serializes Reload; guards sum, err and loaded
	sum    [sha256.Size]byte // of the files behind cur
	err    error             // of the last Reload
	loaded time.Time         // when cur was built
}

// Status is what the last reload did.
type Status struct {
	// Err is the last reload's error: nil while the value in use is the one
	// the files on disk describe.
	Err error
	// Loaded is when the value in use was built from the files.
	Loaded time.Time
}

// Config says how a Reloader reads and builds its value.
type Config[T any] struct {
	// What names the value in log messages, e.g. "serving certificate".
	What string
	// Paths are the files the value is built from, each read with Limit.
	Paths []string
	Limit int64
	// Build makes the value from the files' contents, in the order of
	// Paths. Its errors should name the files.
	Build func(ctx context.Context, contents [][]byte) (*T, error)
	// Replaced, when not nil, is called with a value that a reload has
	// just replaced and the value now in use, e.g. to release the old one.
	// It runs under the reload's lock.
	Replaced func(old, current *T)
	// Log receives a line for each failed reload in Watch; nil for none.
	Log *zap.Logger
	// Failed is that line's message; empty means "reload <What>; keeping
	// the current one".
	Failed string
}

// NewReloader builds the value from the files; it fails when that does.
func NewReloader[T any](ctx context.Context, c Config[T]) (*Reloader[T], error) {
	if c.Log == nil {
		c.Log = zap.NewNop()
	}
	if c.Failed == "" {
		c.Failed = "reload " + c.What + "; keeping the current one"
	}
	r := &Reloader[T]{cfg: c}
	if _, err := r.Reload(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// Load returns the value in use.
func (r *Reloader[T]) Load() *T { return r.cur.Load() }

// Err is the last reload's error: nil while the files on disk are the ones
// the value in use was built from.
func (r *Reloader[T]) Err() error { return r.Status().Err }

// Status is the last reload's outcome.
func (r *Reloader[T]) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Status{Err: r.err, Loaded: r.loaded}
}

// Reload reads the files and, when their contents differ from those of the
// value in use, builds a new value and swaps it in. It reports whether it
// swapped. On error the value in use stays; files back to the contents of
// the value in use clear the last error.
func (r *Reloader[T]) Reload(ctx context.Context) (bool, error) {
	contents, sum, err := r.read()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil && r.cur.Load() != nil && sum == r.sum {
		r.err = nil
		return false, nil
	}
	var v *T
	if err == nil {
		v, err = r.cfg.Build(ctx, contents)
	}
	if err != nil {
		r.err = err
		return false, err
	}
	r.sum, r.err, r.loaded = sum, nil, time.Now()
	if old := r.cur.Swap(v); old != nil && r.cfg.Replaced != nil {
		r.cfg.Replaced(old, v)
	}
	return true, nil
}

// read returns the files' contents and their hash.
func (r *Reloader[T]) read() ([][]byte, [sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	h := sha256.New()
	contents := make([][]byte, len(r.cfg.Paths))
	for i, path := range r.cfg.Paths {
		b, err := Read(path, r.cfg.Limit)
		if err != nil {
			return nil, sum, err
		}
		contents[i] = b
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(b))))
		h.Write(b)
	}
	h.Sum(sum[:0])
	return contents, sum, nil
}

// Watch reloads every interval until ctx is done. A failure is logged once
// until a reload succeeds again, so that a broken file does not log at every
// tick.
func (r *Reloader[T]) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, err := r.Reload(ctx)
		switch {
		case err == nil:
			lastErr = ""
		case err.Error() != lastErr:
			lastErr = err.Error()
			r.cfg.Log.Error(r.cfg.Failed, zap.Strings("files", r.cfg.Paths), zap.Error(err))
		}
	}
}
