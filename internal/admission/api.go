package admission

import (
	"context"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
)

// SkipAnnotation on a Secret, set to "true", makes the webhook leave it untouched.
const SkipAnnotation = "jwe-webhook.io/skip"

// Unwrapper unwraps a content-encryption key for a value in namespace. It is
// implemented by *kms.Keyring. Errors wrapping jwe.ErrKeyMismatch mean "try the
// next recipient"; any other error is fatal for the value.
type Unwrapper interface {
	Unwrap(ctx context.Context, namespace string, r jwe.Recipient) ([]byte, error)
}
