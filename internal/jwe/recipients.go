package jwe

import (
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/go-jose/go-jose/v4"
)

// checkRecipients refuses two recipients with the same encrypted key: the
// decrypter is told which recipient go-jose asks about by its encrypted key,
// so a repeat would make the second one answer for the first. Base64url is
// checked to be canonical, so equal keys are equal strings.
func checkRecipients(recipients []rawRecipient) error {
	seen := make(map[string]int, len(recipients))
	for i, r := range recipients {
		if r.EncryptedKey == nil || *r.EncryptedKey == "" {
			continue // refused later with a reason
		}
		if j, ok := seen[*r.EncryptedKey]; ok {
			return fmt.Errorf("recipients %d and %d have the same encrypted key", j+1, i+1)
		}
		seen[*r.EncryptedKey] = i
	}
	return nil
}

// checkParams has go-jose read the parameters of one recipient's header as
// it would when decrypting (a "jwk", "x5c" or "epk" that does not parse
// fails there), so that a malformed one is refused now, with the parameter
// named, rather than met in the middle of decryption. go-jose checks the
// protected and shared unprotected headers at parse; a recipient's own header
// only when it decrypts, so this hands it over as the unprotected header of
// a flattened serialization with no content.
func checkParams(protected string, unprotected, header map[string]json.RawMessage, where string) error {
	if goJoseReads(protected, unprotected, header) {
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(header)) {
		without := maps.Clone(header)
		delete(without, name)
		if goJoseReads(protected, unprotected, without) {
			return fmt.Errorf("%s: parameter %q is malformed", where, name)
		}
	}
	return fmt.Errorf("%s: its parameters are malformed together", where)
}

// goJoseReads reports whether go-jose parses a flattened JWE with protected
// and the union of unprotected and header as its unprotected header.
func goJoseReads(protected string, unprotected, header map[string]json.RawMessage) bool {
	merged := maps.Clone(unprotected)
	if merged == nil {
		merged = map[string]json.RawMessage{}
	}
	maps.Copy(merged, header)
	b, err := json.Marshal(map[string]any{"protected": protected, "unprotected": merged, "encrypted_key": "", "iv": "", "ciphertext": "", "tag": ""})
	if err != nil {
		return false
	}
	_, err = jose.ParseEncryptedJSON(string(b), KeyAlgorithms, ContentEncryptions)
	return err == nil
}

// checkKeyAgreement checks the ECDH-ES parameters of header h, where present:
// "epk" is an EC public key as a JWK on its curve, "apu" and "apv" are
// base64url. The key service reads them only when it unwraps, and a
// malformed one is the value's fault, not the service's.
func checkKeyAgreement(h map[string]json.RawMessage, where string) error {
	if raw, ok := h["epk"]; ok {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(raw); err != nil {
			return fmt.Errorf(`%s: "epk" is not a JWK`, where)
		}
		if _, ok := jwk.Key.(*ecdsa.PublicKey); !ok {
			return fmt.Errorf(`%s: "epk" is not an EC public key`, where)
		}
	}
	for _, name := range []string{"apu", "apv"} {
		v, err := stringParam(h, name)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if _, err := decodePart(v); err != nil {
			return fmt.Errorf("%s: %q: %w", where, name, err)
		}
	}
	return nil
}
