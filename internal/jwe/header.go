package jwe

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"
)

// finish reads "enc" and the scope from the protected header and checks the
// parts every JWE of ours has.
func (o *Object) finish(protected map[string]json.RawMessage, iv, tag []byte) error {
	enc, err := stringParam(protected, "enc")
	if err != nil {
		return fmt.Errorf("protected header: %w", err)
	}
	if enc == "" {
		return errors.New(`protected header has no "enc"`)
	}
	o.Encryption = enc
	if o.Scope, err = scopeFromHeader(protected); err != nil {
		return err
	}
	if len(iv) == 0 {
		return errors.New("initialization vector is empty")
	}
	if len(tag) == 0 {
		return errors.New("authentication tag is empty")
	}
	return nil
}

// recipient builds a Recipient from the headers that apply to it.
func recipient(protected, unprotected, header map[string]json.RawMessage, ek []byte) (Recipient, error) {
	var r Recipient
	for _, h := range []map[string]json.RawMessage{protected, unprotected, header} {
		alg, err := stringParam(h, "alg")
		if err != nil {
			return r, err
		}
		if alg != "" {
			r.Algorithm = alg
		}
		kid, err := stringParam(h, "kid")
		if err != nil {
			return r, err
		}
		if kid != "" {
			r.KeyID = kid
		}
		// The headers are disjoint (checked before), so at most one has each.
		if v, ok := h["epk"]; ok {
			r.EphemeralKey = v
		}
		if v, ok := h["apu"]; ok {
			r.PartyUInfo = v
		}
		if v, ok := h["apv"]; ok {
			r.PartyVInfo = v
		}
	}
	if r.Algorithm == "" {
		return r, errors.New(`no "alg" header`)
	}
	if len(ek) == 0 {
		return r, fmt.Errorf("encrypted key is empty (required by %q)", r.Algorithm)
	}
	r.EncryptedKey = ek
	return r, nil
}

// forbidden header parameters, with the reason given when one is present.
var forbidden = map[string]string{
	"zip":  "compression is not allowed",
	"crit": "critical header extensions are not supported",
	"p2s":  "password-based key encryption is not allowed",
	"p2c":  "password-based key encryption is not allowed",
	"jku":  "key URLs are not followed",
	"x5u":  "certificate URLs are not followed",
}

// checkHeader applies the allow-lists and the forbidden parameters to one
// header. Only the protected header may carry "enc" and the scope, so that
// they are covered by the authentication tag.
func checkHeader(h map[string]json.RawMessage, where string, protected bool) error {
	for _, name := range slices.Sorted(maps.Keys(h)) {
		if reason, ok := forbidden[name]; ok {
			return fmt.Errorf("%s has %q: %s", where, name, reason)
		}
		if !protected && (name == "enc" || name == HeaderNamespace || name == HeaderName) {
			return fmt.Errorf("%s has %q, which must be in the protected header", where, name)
		}
	}
	if err := checkKeyAgreement(h, where); err != nil {
		return err
	}
	alg, err := stringParam(h, "alg")
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if alg != "" && !slices.Contains(KeyAlgorithms, jose.KeyAlgorithm(alg)) {
		return fmt.Errorf("%s: key algorithm %q is not allowed (allowed: %s)", where, alg, joinAlgs(KeyAlgorithms))
	}
	enc, err := stringParam(h, "enc")
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if enc != "" && !slices.Contains(ContentEncryptions, jose.ContentEncryption(enc)) {
		return fmt.Errorf("%s: content encryption %q is not allowed (allowed: %s)", where, enc, joinAlgs(ContentEncryptions))
	}
	return nil
}

// disjoint enforces RFC 7516 section 7.2.1: a header parameter name appears
// in at most one of the headers that apply to a recipient. Without it an
// "alg" in the unprotected header could shadow the protected one.
func disjoint(a, b map[string]json.RawMessage, aName, bName string) error {
	for _, name := range slices.Sorted(maps.Keys(b)) {
		if _, ok := a[name]; ok {
			return fmt.Errorf("%q appears in both the %s and the %s", name, aName, bName)
		}
	}
	return nil
}

// parseHeader decodes a JOSE header: one JSON object, no duplicate members,
// within MaxHeaderSize.
func parseHeader(b []byte, where string) (map[string]json.RawMessage, error) {
	if len(b) > MaxHeaderSize {
		return nil, fmt.Errorf("%s is %d bytes, larger than the limit of %d", where, len(b), MaxHeaderSize)
	}
	if err := checkJSONObject(b, where); err != nil {
		return nil, err
	}
	var h map[string]json.RawMessage
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("%s is not a JSON object: %w", where, err)
	}
	return h, nil
}

// checkJSONObject reports whether b is exactly one valid JSON object with no
// duplicate member names at any depth. Parsers disagree about which of two
// duplicates wins, so a duplicate is a way to show one value to a reviewer
// and another to the decrypter.
func checkJSONObject(b []byte, where string) error {
	if !json.Valid(b) || !utf8.Valid(b) {
		return fmt.Errorf("%s is not valid JSON in UTF-8", where)
	}
	if !bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte("{")) {
		return fmt.Errorf("%s is not a JSON object", where)
	}
	if name, dup := duplicateMember(b); dup {
		return fmt.Errorf("%s has the member %q more than once", where, name)
	}
	return nil
}

// duplicateMember scans b, valid JSON, and returns the first member name that
// repeats within one object, at any depth. It is a scanner rather than a
// json.Decoder walk because it runs on every header of every value.
func duplicateMember(b []byte) (string, bool) {
	type frame struct {
		object bool
		keys   map[string]struct{}
	}
	var stack []frame
	expectKey := false
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			end := i + 1
			escaped := false
			for ; b[end] != '"'; end++ {
				if b[end] == '\\' {
					escaped = true
					end++
				}
			}
			if expectKey && len(stack) > 0 && stack[len(stack)-1].object {
				key := string(b[i+1 : end])
				if escaped {
					_ = json.Unmarshal(b[i:end+1], &key)
				}
				keys := stack[len(stack)-1].keys
				if _, seen := keys[key]; seen {
					return key, true
				}
				keys[key] = struct{}{}
				expectKey = false
			}
			i = end
		case '{':
			stack = append(stack, frame{object: true, keys: map[string]struct{}{}})
			expectKey = true
		case '[':
			stack = append(stack, frame{})
		case '}', ']':
			stack = stack[:len(stack)-1]
		case ',':
			expectKey = len(stack) > 0 && stack[len(stack)-1].object
		}
	}
	return "", false
}

// decodePart decodes one base64url part without padding, as RFC 7515
// requires, naming the problem instead of echoing the input.
func decodePart(s string) ([]byte, error) {
	if i := strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}); i >= 0 {
		return nil, fmt.Errorf("not base64url: character at offset %d is not in the base64url alphabet (padding and whitespace are not allowed)", i)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, errors.New("not base64url: bad length or trailing bits")
	}
	return b, nil
}

// stringParam returns header parameter name as a string, "" when absent.
func stringParam(h map[string]json.RawMessage, name string) (string, error) {
	raw, ok := h[name]
	if !ok {
		return "", nil
	}
	// The common case, a plain quoted string, needs no decoder: raw is
	// already valid JSON.
	if len(raw) >= 2 && raw[0] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("header parameter %q is not a string", name)
	}
	return s, nil
}

func joinAlgs[T ~string](algs []T) string {
	s := make([]string, len(algs))
	for i, a := range algs {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}
