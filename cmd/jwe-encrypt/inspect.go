package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/manifest"
)

const inspectUsage = `Usage:
    jwe-encrypt inspect [FILE]

Shows how values are encrypted and what they are bound to, without decrypting
anything: the key management algorithm (alg), the content encryption (enc),
the key ID of each recipient (kid) and the scope: strict:NAMESPACE/NAME,
namespace:NAMESPACE or cluster. Values that are not encrypted are named, never
printed.

FILE is a JWE or a manifest (YAML or JSON, one or more documents); without
FILE, or with "-", standard input is read.

Examples:
    $ jwe-encrypt inspect db-secret.yaml
    db-secret.yaml:8: Secret hr/db: key "password": alg=RSA-OAEP-256 enc=A256GCM kid=projects/…/cryptoKeyVersions/3 scope=strict:hr/db
    db-secret.yaml:9: Secret hr/db: key "user" is not encrypted

    $ jwe-encrypt inspect < password.jwe
    alg=RSA-OAEP-256 enc=A256GCM kid=vault://transit/k8s?version=2 scope=namespace:hr
`

func (c *cli) inspect(args []string) error {
	fs := flag.NewFlagSet("jwe-encrypt inspect", flag.ContinueOnError)
	args, err := c.parseFlags(fs, inspectUsage, args)
	if err != nil {
		return err
	}
	path := "-"
	switch len(args) {
	case 0:
	case 1:
		path = args[0]
	default:
		return withHint(errors.New("inspect reads one file"), "run it once per file")
	}
	if path == "-" && c.prompt != nil {
		return withHint(errors.New("inspect reads a JWE or a manifest, and standard input is a terminal"), "give a FILE, or pipe it in: jwe-encrypt inspect < value.jwe")
	}
	name := displayName(path)
	data, err := c.readInput(path, maxManifestSize)
	if err != nil {
		return err
	}
	if jwe.Detect(data) {
		obj, err := jwe.Parse(data)
		if err != nil {
			return fmt.Errorf("%s: not a valid JWE: %w", name, err)
		}
		fmt.Fprintln(c.stdout, describe(obj))
		return nil
	}
	f, err := manifest.Parse(data)
	if err != nil {
		return fmt.Errorf("%s: neither a JWE nor a manifest: %w", name, err)
	}
	if len(f.Secrets()) == 0 {
		return fmt.Errorf("%s: neither a JWE nor a manifest with a Secret", name)
	}
	for _, s := range f.Secrets() {
		inspectSecret(c.stdout, name, s)
	}
	return nil
}

// inspectSecret writes a line for each value of s.
func inspectSecret(w io.Writer, file string, s *manifest.Secret) {
	if s.Err != nil {
		fmt.Fprintf(w, "%s:%d: Secret %s: %v\n", file, s.Line, s, s.Err)
	}
	for _, v := range s.Values {
		fmt.Fprintf(w, "%s:%d: Secret %s: key %q", file, v.Line, s, v.Key)
		obj, problem := parseValue(v)
		if obj == nil {
			fmt.Fprintf(w, " %s\n", problem)
			continue
		}
		fmt.Fprintf(w, ": %s", describe(obj))
		if err := scopeMismatch(s, obj); err != nil {
			fmt.Fprintf(w, " (%v)", err)
		}
		fmt.Fprintln(w)
	}
}

// parseValue returns the JWE a value holds, or what is wrong with it: it is
// not encrypted, not a valid JWE, or no value at all.
func parseValue(v manifest.Value) (*jwe.Object, string) {
	if v.Err != nil {
		return nil, v.Err.Error()
	}
	if !jwe.Detect(v.Bytes) {
		return nil, "is not encrypted"
	}
	obj, err := jwe.Parse(v.Bytes)
	if err != nil {
		return nil, "is not a valid JWE: " + err.Error()
	}
	return obj, ""
}

// describe says how a JWE is encrypted and what it is bound to.
func describe(obj *jwe.Object) string {
	var algs, kids []string
	for _, r := range obj.Recipients {
		kid := r.KeyID
		if kid == "" {
			kid = "(none)"
		}
		algs, kids = append(algs, r.Algorithm), append(kids, kid)
	}
	return fmt.Sprintf("alg=%s enc=%s kid=%s scope=%s", strings.Join(algs, ","), obj.Encryption, strings.Join(kids, ","), scopeText(obj.Scope))
}

func scopeText(s jwe.Scope) string {
	switch s.Kind() {
	case scopeStrict:
		return scopeStrict + ":" + s.Namespace + "/" + s.Name
	case scopeNamespace:
		return scopeNamespace + ":" + s.Namespace
	}
	return scopeCluster
}

// scopeMismatch returns why the webhook would refuse obj in s, when s says
// where it goes: it names a namespace.
func scopeMismatch(s *manifest.Secret, obj *jwe.Object) error {
	if s.Namespace == "" {
		return nil
	}
	return obj.Scope.Check(s.Namespace, s.Name)
}
