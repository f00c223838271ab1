package keyconfig

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms"
)

// ErrNotConnected means a key's service has not been reached since the key
// configuration was loaded; the webhook keeps trying in the background and
// refuses the key's values as unavailable until then.
var ErrNotConnected = errors.New("key service not reached yet")

// How long the first attempts to reach the key services may take while the
// keyring is built, all keys together (so that a service that never answers
// delays the start by that much, not that much per key), and later each;
// and how long to wait between later attempts.
const (
	connectTimeout    = 5 * time.Second
	connectFirstRetry = time.Second
	connectMaxRetry   = 30 * time.Second
)

// connectFunc reaches a key service and returns the key, with what releases
// it (nil for nothing).
type connectFunc func(ctx context.Context) (kms.Decrypter, func(), error)

// KeyState is whether a configured key's service has been reached.
type KeyState struct {
	KeyID, Provider string
	// Err is why the service has not been reached yet; nil once it has.
	Err error
}

// lateKey stands for a key whose service could not be reached while the
// keyring was built. It answers to the key's IDs, which the configuration
// gives, refuses values with ErrNotConnected, and tries again in the
// background until it reaches the service; from then on it is the key.
type lateKey struct {
	kid      string
	match    func(string) bool
	provider string
	connect  connectFunc
	log      *zap.Logger

	mu      sync.Mutex // guards key, release, err
	key     kms.Decrypter
	release func()
	err     error

	stop context.CancelFunc
	done chan struct{}
}

// connectOrLater reaches the service with connect by deadline and returns
// the key; when that fails, it returns a lateKey that keeps trying.
func connectOrLater(ctx context.Context, deadline time.Time, kid, provider string, match func(string) bool, connect connectFunc, log *zap.Logger) (kms.Decrypter, func()) {
	cctx, cancel := context.WithDeadline(ctx, deadline)
	key, release, err := connect(cctx)
	cancel()
	if err == nil {
		return key, release
	}
	log.Warn("key service not reachable; its values are refused until it answers, retrying in the background",
		zap.String("kid", kid), zap.String("provider", provider), zap.Error(err))
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	k := &lateKey{kid: kid, match: match, provider: provider, connect: connect, log: log, err: err, stop: stop, done: make(chan struct{})}
	go k.retry(bg)
	return k, k.close
}

var _ kms.Decrypter = (*lateKey)(nil)

func (k *lateKey) KeyID() string              { return k.kid }
func (k *lateKey) MatchKeyID(kid string) bool { return k.match(kid) }

func (k *lateKey) Unwrap(ctx context.Context, r jwe.Recipient) ([]byte, error) {
	key, err := k.current()
	if key == nil {
		return nil, fmt.Errorf("%w (%s): %v", ErrNotConnected, k.provider, err)
	}
	return key.Unwrap(ctx, r)
}

// PublicKeys are the key's, once its service has been reached.
func (k *lateKey) PublicKeys(ctx context.Context) ([]jwe.PublicKey, error) {
	key, err := k.current()
	if key == nil {
		return nil, fmt.Errorf("%w (%s): %v", ErrNotConnected, k.provider, err)
	}
	if pk := publicKeys(key); pk != nil {
		return pk(ctx)
	}
	return nil, nil
}

// current returns the key once reached, else the last attempt's error.
func (k *lateKey) current() (kms.Decrypter, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.key, k.err
}

// state reports whether the service has been reached.
func (k *lateKey) state() KeyState {
	_, err := k.current()
	return KeyState{KeyID: k.kid, Provider: k.provider, Err: err}
}

// retry tries to reach the service, waiting longer after each failure,
// until it does or ctx ends.
func (k *lateKey) retry(ctx context.Context) {
	defer close(k.done)
	wait := connectFirstRetry
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, connectTimeout)
		key, release, err := k.connect(cctx)
		cancel()
		k.mu.Lock()
		if err == nil {
			k.key, k.release, k.err = key, release, nil
			k.mu.Unlock()
			k.log.Info("key service reached; its values are served", zap.String("kid", k.kid), zap.String("provider", k.provider))
			return
		}
		if k.err == nil || k.err.Error() != err.Error() {
			k.log.Warn("key service still not reachable; retrying", zap.String("kid", k.kid), zap.String("provider", k.provider), zap.Error(err))
		}
		k.err = err
		k.mu.Unlock()
		wait = min(2*wait, connectMaxRetry)
	}
}

// close stops retrying and releases the key if it was reached.
func (k *lateKey) close() {
	k.stop()
	<-k.done
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.release != nil {
		k.release()
	}
}
