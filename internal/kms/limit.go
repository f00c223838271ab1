package kms

import (
	"context"
	"fmt"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
)

// CallLimit bounds the key-service calls in flight across every key of the
// process. A call past the limit is refused at once with ErrOverloaded rather
// than queued: under a burst, waiting would only carry the review past the
// apiserver's timeout, and a fast "retry" lets the client back off.
type CallLimit struct {
	slots chan struct{}
}

// NewCallLimit returns a limit of n calls in flight; n must be positive.
func NewCallLimit(n int) *CallLimit {
	return &CallLimit{slots: make(chan struct{}, n)}
}

// InFlight is the number of calls holding a slot now.
func (l *CallLimit) InFlight() int { return len(l.slots) }

// Max is the limit.
func (l *CallLimit) Max() int { return cap(l.slots) }

// decrypter returns d with each Unwrap taking a slot of l for the duration
// of the call.
func (l *CallLimit) decrypter(d Decrypter) Decrypter {
	return decorate(d, l.unwrap)
}

func (l *CallLimit) unwrap(ctx context.Context, r jwe.Recipient, next Decrypter) ([]byte, error) {
	select {
	case l.slots <- struct{}{}:
	default:
		return nil, fmt.Errorf("%d calls in flight: %w", l.Max(), ErrOverloaded)
	}
	defer func() { <-l.slots }()
	return next.Unwrap(ctx, r)
}
