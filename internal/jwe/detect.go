package jwe

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"slices"
)

// space is the whitespace Detect and Parse ignore around a value: JSON's
// (RFC 8259 section 2), space, tab, line feed and carriage return, and no
// other. The matchConditions of the MutatingWebhookConfiguration rely on it.
const space = " \t\n\r"

// Detect reports whether value has the shape of a JWE. After the leading and
// trailing space, it is either a compact serialization whose first part is
// the base64url of a JSON object starting with '{' (so the value starts with
// 'e') that has an "enc" member, or a JSON serialization: a JSON object with
// a "ciphertext" member whose first member, written without escapes, is one
// of RFC 7516's (so the value starts with '{', optional space and '"' and a
// member name). The webhook's matchConditions send every Secret with a value
// that starts like that (see README, "Which values are decrypted"), and a
// test holds them to it. A value with the shape is ours: Parse either
// accepts it or says why not.
func Detect(value []byte) bool {
	_, ok := detect(bytes.Trim(value, space))
	return ok
}

// detect is Detect on a trimmed value. For a compact serialization it also
// returns the decoded protected header, so that Parse decodes it only once;
// nil when the header is too large to decode.
func detect(v []byte) (map[string]json.RawMessage, bool) {
	if len(v) == 0 {
		return nil, false
	}
	if v[0] == '{' {
		if !firstMemberIsJWE(v) {
			return nil, false
		}
		var probe struct {
			Ciphertext json.RawMessage `json:"ciphertext"`
		}
		return nil, len(v) <= MaxSize && json.Unmarshal(v, &probe) == nil && probe.Ciphertext != nil
	}
	first, _, found := bytes.Cut(v, []byte("."))
	if !found {
		return nil, false
	}
	if base64.RawURLEncoding.DecodedLen(len(first)) > MaxHeaderSize {
		// Too large to be a header we accept; still ours if it starts like
		// one (`{"` encodes as "eyJ"), so that Parse can say why it is refused.
		return nil, bytes.HasPrefix(first, []byte("eyJ"))
	}
	// Padding is refused by Parse, with a reason; it does not make a JWE
	// someone else's.
	raw, err := base64.RawURLEncoding.DecodeString(string(bytes.TrimRight(first, "=")))
	if err != nil || len(raw) == 0 || raw[0] != '{' {
		// Only a header that starts with '{' (so the value with 'e'): a
		// JSON object with leading whitespace is not a JWE's header.
		return nil, false
	}
	var header map[string]json.RawMessage
	if json.Unmarshal(raw, &header) != nil {
		return nil, false
	}
	_, hasEnc := header["enc"]
	return header, hasEnc
}

// firstMemberIsJWE reports whether the JSON object v (starting with '{')
// starts with a member that a JWE JSON serialization has, so that other JSON
// (a Docker config, a cloud credential file) is told apart by its first bytes.
func firstMemberIsJWE(v []byte) bool {
	rest := bytes.TrimLeft(v[1:], space)
	if len(rest) == 0 || rest[0] != '"' {
		return false
	}
	name, _, found := bytes.Cut(rest[1:], []byte(`"`))
	return found && slices.Contains(jsonMembers, string(name))
}
