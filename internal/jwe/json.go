package jwe

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/go-jose/go-jose/v4"
)

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

// parseJSON parses v, a JSON serialization, with at most maxRecipients
// recipients. Each member is checked before go-jose reads the whole.
func parseJSON(v string, maxRecipients int) (*Object, error) {
	raw, err := readJSON(v)
	if err != nil {
		return nil, err
	}
	protected, unprotected, err := raw.headers()
	if err != nil {
		return nil, err
	}
	recipients, err := raw.recipients(maxRecipients)
	if err != nil {
		return nil, err
	}
	obj := &Object{Serialization: JSON}
	for i, rr := range recipients {
		rec, err := rr.recipient(i, *raw.Protected, protected, unprotected)
		if err != nil {
			return nil, err
		}
		obj.Recipients = append(obj.Recipients, rec)
	}
	iv, tag, err := raw.parts()
	if err != nil {
		return nil, err
	}
	if err := obj.finish(protected, iv, tag); err != nil {
		return nil, err
	}
	obj.parsed, err = jose.ParseEncryptedJSON(v, KeyAlgorithms, ContentEncryptions)
	if err != nil {
		return nil, fmt.Errorf("malformed JWE: %w", err)
	}
	return obj, nil
}

// readJSON reads v as one JSON object without duplicate or unknown members.
func readJSON(v string) (*rawJSON, error) {
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
	return &raw, nil
}

// headers decodes and checks the protected header, which must be there, and
// the shared unprotected header, when there is one.
func (raw *rawJSON) headers() (protected, unprotected map[string]json.RawMessage, err error) {
	if raw.Protected == nil {
		return nil, nil, errors.New(`JWE JSON serialization has no "protected" header; "enc" and the scope must be integrity protected`)
	}
	protectedBytes, err := decodePart(*raw.Protected)
	if err != nil {
		return nil, nil, fmt.Errorf("protected header: %w", err)
	}
	if protected, err = parseHeader(protectedBytes, "protected header"); err != nil {
		return nil, nil, err
	}
	if err := checkHeader(protected, "protected header", true); err != nil {
		return nil, nil, err
	}
	if raw.Unprotected == nil {
		return protected, nil, nil
	}
	if unprotected, err = parseHeader(raw.Unprotected, "unprotected header"); err != nil {
		return nil, nil, err
	}
	if err := checkHeader(unprotected, "unprotected header", false); err != nil {
		return nil, nil, err
	}
	if err := disjoint(protected, unprotected, "protected header", "unprotected header"); err != nil {
		return nil, nil, err
	}
	return protected, unprotected, nil
}

// recipients returns the recipient objects, the flattened syntax's one
// included, and checks their number and encrypted keys.
func (raw *rawJSON) recipients(maxRecipients int) ([]rawRecipient, error) {
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
	return recipients, nil
}

// recipient checks recipient object i, its header against the shared ones,
// and builds its Recipient. protectedB64 is the protected header as written.
func (rr rawRecipient) recipient(i int, protectedB64 string, protected, unprotected map[string]json.RawMessage) (Recipient, error) {
	where := fmt.Sprintf("recipient %d header", i+1)
	var header map[string]json.RawMessage
	if rr.Header != nil {
		var err error
		if header, err = parseHeader(rr.Header, where); err != nil {
			return Recipient{}, err
		}
		if err := checkHeader(header, where, false); err != nil {
			return Recipient{}, err
		}
		if err := disjoint(protected, header, "protected header", where); err != nil {
			return Recipient{}, err
		}
		if err := disjoint(unprotected, header, "unprotected header", where); err != nil {
			return Recipient{}, err
		}
		if err := checkParams(protectedB64, unprotected, header, where); err != nil {
			return Recipient{}, err
		}
	}
	var ek []byte
	if rr.EncryptedKey != nil {
		var err error
		if ek, err = decodePart(*rr.EncryptedKey); err != nil {
			return Recipient{}, fmt.Errorf("recipient %d encrypted key: %w", i+1, err)
		}
	}
	rec, err := recipient(protected, unprotected, header, ek)
	if err != nil {
		return Recipient{}, fmt.Errorf("recipient %d: %w", i+1, err)
	}
	return rec, nil
}

// parts decodes the initialization vector, ciphertext, authentication tag
// and additional authenticated data, and returns the first and third.
func (raw *rawJSON) parts() (iv, tag []byte, err error) {
	parts := map[string]*string{"iv": raw.IV, "ciphertext": raw.Ciphertext, "tag": raw.Tag}
	decoded := map[string][]byte{}
	for _, name := range []string{"iv", "ciphertext", "tag"} {
		p := parts[name]
		if p == nil {
			return nil, nil, fmt.Errorf("JWE JSON serialization has no %q", name)
		}
		if decoded[name], err = decodePart(*p); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if raw.AAD != nil {
		if _, err := decodePart(*raw.AAD); err != nil {
			return nil, nil, fmt.Errorf("aad: %w", err)
		}
	}
	return decoded["iv"], decoded["tag"], nil
}
