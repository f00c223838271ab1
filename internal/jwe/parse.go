// Package jwe detects, parses, checks, decrypts and encrypts the JWE (RFC 7516)
// values that jwe-webhook handles. Only go-jose does the cryptography; this
// package decides what is accepted before go-jose sees it.
package jwe

import (
	"bytes"
	"errors"
	"fmt"

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
