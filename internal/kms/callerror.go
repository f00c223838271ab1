package kms

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
)

// CallError is a failed call to a key service. Its message names the
// provider, the call, the key and, in short, what the service said; it wraps
// the client library's error and the sentinels that classify it (the
// provider's ErrPermissionDenied, ErrKeyNotFound, context.DeadlineExceeded…)
// so that errors.Is and errors.As find each.
type CallError struct {
	Msg  string
	Errs []error
}

func (e *CallError) Error() string   { return e.Msg }
func (e *CallError) Unwrap() []error { return e.Errs }

// Classify says what a key service's own error means: the text that follows
// the call in the message and the sentinels to wrap besides err. ok is false
// for an error that is not the service's answer (a transport failure).
type Classify func(err error) (what string, errs []error, ok bool)

// NewCallError describes err, returned by the call op on key of service
// (e.g. "aws kms"). When ctx ended first the error says so and wraps
// ctx.Err(); an answer of the service is described by classify; anything
// else is a transport failure that wraps unavailable, and
// context.DeadlineExceeded too when the network timed out.
func NewCallError(ctx context.Context, service, op, key string, err, unavailable error, classify Classify) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return &CallError{Msg: fmt.Sprintf("%s: %s %q: %v", service, op, key, ctxErr), Errs: []error{ctxErr, err}}
	}
	what, errs, ok := classify(err)
	var netErr net.Error
	switch {
	case ok:
	case errors.As(err, &netErr) && netErr.Timeout():
		what, errs = "timed out: "+ServiceMessage(err.Error()), []error{unavailable, context.DeadlineExceeded}
	default:
		what, errs = "unavailable: "+ServiceMessage(err.Error()), []error{unavailable}
	}
	return &CallError{Msg: fmt.Sprintf("%s: %s %q: %s", service, op, key, what), Errs: append([]error{err}, errs...)}
}

// maxServiceMessage caps a key service's message in errors.
const maxServiceMessage = 200

// ServiceMessage returns the first line of a key service's message, cut to
// 200 bytes, for an error; "no message" when it is empty.
func ServiceMessage(msg string) string {
	msg, _, _ = strings.Cut(strings.TrimSpace(msg), "\n")
	if len(msg) > maxServiceMessage {
		msg = strings.ToValidUTF8(msg[:maxServiceMessage], "") + "…"
	}
	if msg == "" {
		return "no message"
	}
	return msg
}
