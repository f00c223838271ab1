package server

import (
	"context"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
)

const (
	// keySetTimeout bounds the key-service calls of one /keys answer.
	keySetTimeout = 10 * time.Second
	// keySetTTL is how long a /keys answer is reused, so that clients polling
	// it do not turn into key-service calls; clients are told the same.
	keySetTTL = time.Minute
)

// KeySet returns the handler of /keys: the public keys that keys returns, as
// a JWK Set (RFC 7517) whose kids are the ones values name, so that
// custodians encrypt to it (jwe-encrypt -r URL) and CI checks manifests
// against it (jwe-encrypt lint --keys URL). Public keys only: it answers
// anyone. An answer is reused for a minute, and concurrent requests wait for
// one call of keys. When a key service cannot say, the answer is 503 and the
// log says why; a partial set would make good values look unknown.
func KeySet(keys func(context.Context) ([]jwe.PublicKey, error), log *zap.Logger) http.Handler {
	return &keySet{keys: keys, log: log, now: time.Now}
}

type keySet struct {
	keys func(context.Context) ([]jwe.PublicKey, error)
	log  *zap.Logger
	now  func() time.Time

	mu   sync.Mutex
	body []byte    // the last good answer
	at   time.Time // when it was made
}

func (s *keySet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := s.get(r.Context())
	if err != nil {
		s.log.Warn("serve /keys", zap.Error(err))
		http.Error(w, "the key services did not give every public key; the log says why", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "max-age=60")
	_, _ = w.Write(body)
}

// get returns the key set, from the last answer while it is fresh.
func (s *keySet) get(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.body != nil && s.now().Sub(s.at) < keySetTTL {
		return s.body, nil
	}
	ctx, cancel := context.WithTimeout(ctx, keySetTimeout)
	defer cancel()
	pks, err := s.keys(ctx)
	if err != nil {
		return nil, err
	}
	body, err := jwe.MarshalJWKS(pks...)
	if err != nil {
		return nil, err
	}
	s.body, s.at = append(body, '\n'), s.now()
	return s.body, nil
}
