package server

import (
	"context"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
)

// keySetTimeout bounds the key-service calls of one /keys request.
const keySetTimeout = 10 * time.Second

// KeySet returns the handler of /keys: the public keys that keys returns, as
// a JWK Set (RFC 7517) whose kids are the ones values name, so that
// custodians encrypt to it (jwe-encrypt -r URL) and CI checks manifests
// against it (jwe-encrypt lint --keys URL). Public keys only: it answers
// anyone. When a key service cannot say, the answer is 503 and the log says
// why; a partial set would make good values look unknown.
func KeySet(keys func(context.Context) ([]jwe.PublicKey, error), log *zap.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), keySetTimeout)
		defer cancel()
		pks, err := keys(ctx)
		var body []byte
		if err == nil {
			body, err = jwe.MarshalJWKS(pks...)
		}
		if err != nil {
			log.Warn("serve /keys", zap.Error(err))
			http.Error(w, "the key services did not give every public key; the log says why", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = w.Write(append(body, '\n'))
	})
}
