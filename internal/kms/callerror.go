package kms

import "strings"

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
