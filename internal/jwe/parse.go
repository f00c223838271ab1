// Package jwe detects, parses, checks, decrypts and encrypts the JWE (RFC 7516)
// values that jwe-webhook handles. Only go-jose does the cryptography; this
// package decides what is accepted before go-jose sees it.
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

// Limits that keep parsing bounded in time and memory.
const (
	// MaxSize is the largest value, in bytes, that is parsed as a JWE. A
	// Secret holds at most 1 MiB of data in all.
	MaxSize = 1 << 20
	// MaxHeaderSize is the largest decoded JOSE header, in bytes.
	MaxHeaderSize = 8 << 10
	// MaxRecipients is the most recipients one JSON-serialized JWE may have,
	// unless Limits says otherwise.
	MaxRecipients = 16
	// RecipientsCeiling is the most recipients Limits may allow: the most
	// go-jose parses.
	RecipientsCeiling = 32
)

// Limits bound what Parse accepts of one value. The zero value means the
// defaults above.
type Limits struct {
	// MaxRecipients is the most recipients a JSON-serialized JWE may have:
	// 0 means MaxRecipients, and it is at most RecipientsCeiling.
	MaxRecipients int
}

func (l Limits) maxRecipients() int {
	if l.MaxRecipients <= 0 {
		return MaxRecipients
	}
	return min(l.MaxRecipients, RecipientsCeiling)
}

// KeyAlgorithms are the accepted "alg" values.
var KeyAlgorithms = []jose.KeyAlgorithm{jose.RSA_OAEP_256, jose.RSA_OAEP, jose.ECDH_ES_A256KW}

// ContentEncryptions are the accepted "enc" values.
var ContentEncryptions = []jose.ContentEncryption{jose.A256GCM, jose.A128GCM, jose.A128CBC_HS256, jose.A256CBC_HS512}

// ErrNotJWE means the value does not have the shape of a JWE: it is not ours
// and passes through untouched.
var ErrNotJWE = errors.New("not a JWE")

// Serialization says how a JWE was written.
type Serialization string

// The two serializations of RFC 7516.
const (
	Compact Serialization = "compact"
	JSON    Serialization = "json"
)

// Object is a parsed and checked JWE.
type Object struct {
	Serialization Serialization
	// Encryption is the "enc" header.
	Encryption string
	// Scope is what the protected header binds the value to.
	Scope      Scope
	Recipients []Recipient

	parsed *jose.JSONWebEncryption
	value  string // as parsed, without surrounding white space
}

// KeyIDs returns the recipients' key IDs, in order; empty IDs are left out.
func (o *Object) KeyIDs() []string {
	var ids []string
	for _, r := range o.Recipients {
		if r.KeyID != "" {
			ids = append(ids, r.KeyID)
		}
	}
	return ids
}

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

// Parse checks value against the allow-lists and the header rules and returns
// the parsed JWE. It returns an error wrapping ErrNotJWE when value does not
// have the shape of a JWE (see Detect); any other error says why a JWE is
// refused. Errors never contain the value.
func Parse(value []byte) (*Object, error) {
	return Limits{}.Parse(value)
}

// Parse is the package's Parse within l.
func (l Limits) Parse(value []byte) (*Object, error) {
	trimmed := bytes.Trim(value, space)
	header, ok := detect(trimmed)
	if !ok {
		return nil, ErrNotJWE
	}
	if len(value) > MaxSize {
		return nil, fmt.Errorf("JWE is %d bytes, larger than the limit of %d", len(value), MaxSize)
	}
	v := string(trimmed)
	parse := func(v string) (*Object, error) { return parseJSON(v, l.maxRecipients()) }
	if v[0] != '{' {
		parse = func(v string) (*Object, error) { return parseCompact(v, header) }
	}
	obj, err := parse(v)
	if err != nil {
		return nil, err
	}
	obj.value = v
	return obj, nil
}

// parseCompact parses v; detected is its protected header as detect read it,
// nil when it was too large to read.
func parseCompact(v string, detected map[string]json.RawMessage) (*Object, error) {
	// Count before splitting: a value of a million dots must not become a
	// million strings.
	if n := strings.Count(v, ".") + 1; n != 5 {
		return nil, fmt.Errorf("compact JWE must have 5 parts separated by dots, found %d", n)
	}
	parts := strings.Split(v, ".")
	names := [5]string{"protected header", "encrypted key", "initialization vector", "ciphertext", "authentication tag"}
	var decoded [5][]byte
	for i, p := range parts {
		b, err := decodePart(p)
		if err != nil {
			return nil, fmt.Errorf("%s (part %d): %w", names[i], i+1, err)
		}
		decoded[i] = b
	}
	if len(decoded[0]) > MaxHeaderSize || detected == nil {
		return nil, fmt.Errorf("protected header is %d bytes, larger than the limit of %d", len(decoded[0]), MaxHeaderSize)
	}
	protected := detected
	if err := checkJSONObject(decoded[0], "protected header"); err != nil {
		return nil, err
	}
	if err := checkHeader(protected, "protected header", true); err != nil {
		return nil, err
	}
	obj := &Object{Serialization: Compact}
	rec, err := recipient(protected, nil, nil, decoded[1])
	if err != nil {
		return nil, err
	}
	obj.Recipients = []Recipient{rec}
	if err := obj.finish(protected, decoded[2], decoded[4]); err != nil {
		return nil, err
	}
	obj.parsed, err = jose.ParseEncryptedCompact(v, KeyAlgorithms, ContentEncryptions)
	if err != nil {
		return nil, fmt.Errorf("malformed JWE: %w", err)
	}
	return obj, nil
}

// rawJSON is the JWE JSON serialization, general or flattened (RFC 7516
// section 7.2), as written. Members are kept raw so that each one is checked
// here before go-jose reads it.
type rawJSON struct {
	Protected    *string         `json:"protected"`
	Unprotected  json.RawMessage `json:"unprotected"`
	Header       json.RawMessage `json:"header"`
	EncryptedKey *string         `json:"encrypted_key"`
	Recipients   []rawRecipient  `json:"recipients"`
	AAD          *string         `json:"aad"`
	IV           *string         `json:"iv"`
	Ciphertext   *string         `json:"ciphertext"`
	Tag          *string         `json:"tag"`
}

type rawRecipient struct {
	Header       json.RawMessage `json:"header"`
	EncryptedKey *string         `json:"encrypted_key"`
}

// recipientMembers are the members of a recipient object (RFC 7516 section
// 7.2.1), spelled exactly: encoding/json would also match "Header".
var recipientMembers = []string{"header", "encrypted_key"}

// UnmarshalJSON reads a recipient object, refusing members other than
// recipientMembers as the top level refuses unknown members.
func (r *rawRecipient) UnmarshalJSON(b []byte) error {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(b, &members); err != nil {
		return errors.New("a recipient is not a JSON object")
	}
	for _, name := range slices.Sorted(maps.Keys(members)) {
		if !slices.Contains(recipientMembers, name) {
			return fmt.Errorf("a recipient has an unknown member %q", name)
		}
	}
	type plain rawRecipient
	return json.Unmarshal(b, (*plain)(r))
}

func (r rawRecipient) encryptedKey() string {
	if r.EncryptedKey == nil {
		return ""
	}
	return *r.EncryptedKey
}

var jsonMembers = []string{"protected", "unprotected", "header", "encrypted_key", "recipients", "aad", "iv", "ciphertext", "tag"}

func parseJSON(v string, maxRecipients int) (*Object, error) {
	if err := checkJSONObject([]byte(v), "JWE JSON serialization"); err != nil {
		return nil, err
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal([]byte(v), &members); err != nil {
		return nil, fmt.Errorf("JWE JSON serialization: %w", err)
	}
	for name := range members {
		if !slices.Contains(jsonMembers, name) {
			return nil, fmt.Errorf("JWE JSON serialization has an unknown member %q", name)
		}
	}
	var raw rawJSON
	if err := json.Unmarshal([]byte(v), &raw); err != nil {
		return nil, fmt.Errorf("JWE JSON serialization: %w", err)
	}
	if raw.Protected == nil {
		return nil, errors.New(`JWE JSON serialization has no "protected" header; "enc" and the scope must be integrity protected`)
	}
	protectedBytes, err := decodePart(*raw.Protected)
	if err != nil {
		return nil, fmt.Errorf("protected header: %w", err)
	}
	protected, err := parseHeader(protectedBytes, "protected header")
	if err != nil {
		return nil, err
	}
	if err := checkHeader(protected, "protected header", true); err != nil {
		return nil, err
	}
	var unprotected map[string]json.RawMessage
	if raw.Unprotected != nil {
		if unprotected, err = parseHeader(raw.Unprotected, "unprotected header"); err != nil {
			return nil, err
		}
		if err := checkHeader(unprotected, "unprotected header", false); err != nil {
			return nil, err
		}
		if err := disjoint(protected, unprotected, "protected header", "unprotected header"); err != nil {
			return nil, err
		}
	}

	recipients := raw.Recipients
	if len(recipients) > 0 && raw.EncryptedKey != nil && *raw.EncryptedKey == recipients[0].encryptedKey() {
		// go-jose writes the first recipient's key at the top level too; it
		// is never read, so the copy is tolerated when it is exact.
		raw.EncryptedKey = nil
	}
	switch {
	case recipients != nil && (raw.Header != nil || raw.EncryptedKey != nil):
		return nil, errors.New(`JWE JSON serialization mixes "recipients" with a flattened "header" or "encrypted_key"`)
	case recipients == nil:
		recipients = []rawRecipient{{Header: raw.Header, EncryptedKey: raw.EncryptedKey}}
	case len(recipients) == 0:
		return nil, errors.New(`JWE JSON serialization has an empty "recipients" list`)
	case len(recipients) > maxRecipients:
		return nil, fmt.Errorf("JWE has %d recipients, more than the limit of %d", len(recipients), maxRecipients)
	}
	if err := checkRecipients(recipients); err != nil {
		return nil, err
	}

	obj := &Object{Serialization: JSON}
	for i, rr := range recipients {
		where := fmt.Sprintf("recipient %d header", i+1)
		var header map[string]json.RawMessage
		if rr.Header != nil {
			if header, err = parseHeader(rr.Header, where); err != nil {
				return nil, err
			}
			if err := checkHeader(header, where, false); err != nil {
				return nil, err
			}
			if err := disjoint(protected, header, "protected header", where); err != nil {
				return nil, err
			}
			if err := disjoint(unprotected, header, "unprotected header", where); err != nil {
				return nil, err
			}
			if err := checkParams(*raw.Protected, unprotected, header, where); err != nil {
				return nil, err
			}
		}
		var ek []byte
		if rr.EncryptedKey != nil {
			if ek, err = decodePart(*rr.EncryptedKey); err != nil {
				return nil, fmt.Errorf("recipient %d encrypted key: %w", i+1, err)
			}
		}
		rec, err := recipient(protected, unprotected, header, ek)
		if err != nil {
			return nil, fmt.Errorf("recipient %d: %w", i+1, err)
		}
		obj.Recipients = append(obj.Recipients, rec)
	}

	parts := map[string]*string{"iv": raw.IV, "ciphertext": raw.Ciphertext, "tag": raw.Tag}
	decoded := map[string][]byte{}
	for _, name := range []string{"iv", "ciphertext", "tag"} {
		p := parts[name]
		if p == nil {
			return nil, fmt.Errorf("JWE JSON serialization has no %q", name)
		}
		if decoded[name], err = decodePart(*p); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if raw.AAD != nil {
		if _, err := decodePart(*raw.AAD); err != nil {
			return nil, fmt.Errorf("aad: %w", err)
		}
	}
	if err := obj.finish(protected, decoded["iv"], decoded["tag"]); err != nil {
		return nil, err
	}
	obj.parsed, err = jose.ParseEncryptedJSON(v, KeyAlgorithms, ContentEncryptions)
	if err != nil {
		return nil, fmt.Errorf("malformed JWE: %w", err)
	}
	return obj, nil
}

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
