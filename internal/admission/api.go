package admission

import (
	"context"

	"github.com/jwe-webhook/jwe-webhook/internal/kms"
)

// SkipAnnotation on a Secret, set to "true", makes the webhook leave it untouched.
const SkipAnnotation = "jwe-webhook.io/skip"

// Unwrapper unwraps a content-encryption key for a value in namespace. It is
// implemented by *kms.Keyring. Errors wrapping kms.ErrKeyMismatch mean "try the
// next recipient"; any other error is fatal for the value.
type Unwrapper interface {
	Unwrap(ctx context.Context, namespace string, k kms.WrappedKey) ([]byte, error)
}
