package jwe

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// Protected-header parameters that bind a value to where it may be stored.
// Because the protected header is the AEAD's additional data, editing them
// makes decryption fail.
const (
	// HeaderNamespace binds a value to the Secret's namespace.
	HeaderNamespace = "jwe-webhook.io/namespace"
	// HeaderName, together with HeaderNamespace, binds a value to one Secret.
	HeaderName = "jwe-webhook.io/name"
)

// ErrScope means a value was bound to another namespace or Secret.
var ErrScope = errors.New("scope mismatch")

// Scope is what a value is bound to: a namespace and Secret name (strict), a
// namespace, or nothing (cluster-wide).
type Scope struct {
	Namespace string
	Name      string
}

// Kind names the scope: "strict", "namespace" or "cluster".
func (s Scope) Kind() string {
	switch {
	case s.Name != "":
		return "strict"
	case s.Namespace != "":
		return "namespace"
	default:
		return "cluster"
	}
}

// String describes the scope for messages.
func (s Scope) String() string {
	switch s.Kind() {
	case "strict":
		return fmt.Sprintf("Secret %s/%s", s.Namespace, s.Name)
	case "namespace":
		return fmt.Sprintf("namespace %s", s.Namespace)
	default:
		return "any namespace (cluster-wide)"
	}
}

// Check returns an error wrapping ErrScope unless a value with this scope may
// be stored in the Secret namespace/name.
func (s Scope) Check(namespace, name string) error {
	if s.Namespace != "" && s.Namespace != namespace {
		return fmt.Errorf("%w: value is bound to namespace %q, not %q", ErrScope, s.Namespace, namespace)
	}
	if s.Name != "" && s.Name != name {
		if name == "" {
			return fmt.Errorf("%w: value is bound to Secret %q, and this request names no Secret (generateName cannot be used with a strict scope)", ErrScope, s.Name)
		}
		return fmt.Errorf("%w: value is bound to Secret %q, not %q", ErrScope, s.Name, name)
	}
	return nil
}

// headers returns the protected-header parameters that express s.
func (s Scope) headers() map[jose.HeaderKey]any {
	h := map[jose.HeaderKey]any{}
	if s.Namespace != "" {
		h[HeaderNamespace] = s.Namespace
	}
	if s.Name != "" {
		h[HeaderName] = s.Name
	}
	return h
}

// validate rejects a scope that cannot be expressed: a name without a
// namespace.
func (s Scope) validate() error {
	if s.Name != "" && s.Namespace == "" {
		return fmt.Errorf("scope names Secret %q but no namespace", s.Name)
	}
	return nil
}

// scopeFromHeader reads the scope parameters of a protected header.
func scopeFromHeader(protected map[string]json.RawMessage) (Scope, error) {
	var s Scope
	for _, p := range []struct {
		name string
		dst  *string
	}{{HeaderNamespace, &s.Namespace}, {HeaderName, &s.Name}} {
		raw, ok := protected[p.name]
		if !ok {
			continue
		}
		if err := json.Unmarshal(raw, p.dst); err != nil || *p.dst == "" {
			return Scope{}, fmt.Errorf("protected header parameter %q must be a non-empty string", p.name)
		}
	}
	if err := s.validate(); err != nil {
		return Scope{}, fmt.Errorf("protected header: %w", err)
	}
	return s, nil
}
