package jwe

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

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
