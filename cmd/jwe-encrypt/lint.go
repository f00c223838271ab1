package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/manifest"
)

const lintUsage = `Usage:
    jwe-encrypt lint [--strict] [--keys JWKS] [--format text|json] PATH...

Reports every value of a Secret that is not encrypted, one line each:

    FILE:LINE: Secret NAMESPACE/NAME: key "KEY" is not encrypted

and exits with status 1 if there is any, any value that is not a valid
JWE, or anything it could not check: a file that is not YAML or JSON (a
Helm template, say), a Secret or value it cannot read (an alias). Manifests
are YAML or JSON, one or more documents, Lists too. Directories are
searched for *.yaml, *.yml and *.json files, skipping .git, node_modules and
vendor; files named on the command line are read whatever their name.
Nothing is decrypted and no value is printed.

With --keys, the cluster's key set (a JWK Set file, or the webhook's /keys
URL), each value must also name a key of the set and be bound to the
Secret that holds it, so that CI catches a manifest the webhook would
refuse before it is applied.

Warnings, which fail the run only with --strict: values bound to no
namespace (cluster scope), and, without --keys, values bound to another
Secret than the one that holds them (unless a tool such as kustomize
renames it).

Options:
    --strict          Fail on warnings too.
    --keys JWKS       The cluster's public keys: a JWK Set or PEM file, or
                      an https:// URL such as the webhook's /keys.
    --format FORMAT   text (default) or json: {"findings": [{"file",
                      "line", "secret", "key", "severity", "message"}],
                      "errors": N, "warnings": N}.

Examples:
    $ jwe-encrypt lint .
    $ jwe-encrypt lint --strict deploy/ secrets.yaml
    $ jwe-encrypt lint --keys https://jwe-webhook.example.com/keys --format json clusters/prod
`

// lintOptions are the command line of lint.
type lintOptions struct {
	strict bool
	keys   string
	format string
	paths  []string
}

func (c *cli) lint(ctx context.Context, args []string) error {
	o := lintOptions{format: "text"}
	fs := flag.NewFlagSet("jwe-encrypt lint", flag.ContinueOnError)
	fs.BoolVar(&o.strict, "strict", false, "")
	fs.StringVar(&o.keys, "keys", "", "")
	fs.StringVar(&o.format, "format", "text", "")
	paths, err := c.parseFlags(fs, lintUsage, args)
	if err != nil {
		return err
	}
	switch {
	case len(paths) == 0:
		return withHint(errors.New("lint needs a path"), "give files or directories: jwe-encrypt lint .")
	case o.format != "text" && o.format != "json":
		return withHint(fmt.Errorf("unknown format %q", o.format), "--format is text or json")
	}
	l := &linter{w: c.stdout, json: o.format == "json"}
	if o.keys != "" {
		ks := &keyServices{getenv: c.getenv, warnf: c.warnf}
		if l.keySet, err = ks.keySet(ctx, o.keys); err != nil {
			return fmt.Errorf("--keys: %w", err)
		}
	}
	for _, p := range paths {
		if err := walkManifests(p, l.file); err != nil {
			return err
		}
	}
	if err := l.flush(); err != nil {
		return err
	}
	if l.errors == 0 && (!o.strict || l.warnings == 0) {
		return nil
	}
	err = fmt.Errorf("lint: %s, %s", count(l.errors, "error"), count(l.warnings, "warning"))
	if l.errors == 0 {
		return withHint(err, "--strict fails on warnings; re-encrypt values with --scope strict, or leave out --strict")
	}
	return withHint(err, "encrypt the values in place: jwe-encrypt -r PUBLIC-KEY -f FILE -i")
}

// finding is one thing lint reports.
type finding struct {
	File     string `json:"file"`
	Line     int    `json:"line,omitempty"`
	Secret   string `json:"secret,omitempty"`
	Key      string `json:"key,omitempty"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

// text is the finding as a line: FILE:LINE: [warning: ][Secret S: ][key "K"]MESSAGE.
func (f finding) text() string {
	var b strings.Builder
	b.WriteString(f.File)
	if f.Line > 0 {
		fmt.Fprintf(&b, ":%d", f.Line)
	}
	b.WriteString(": ")
	if f.Severity == "warning" {
		b.WriteString("warning: ")
	}
	if f.Secret != "" {
		fmt.Fprintf(&b, "Secret %s: ", f.Secret)
	}
	switch {
	case f.Key == "":
		b.WriteString(f.Message)
	case strings.HasPrefix(f.Message, "is ") || strings.HasPrefix(f.Message, "not "):
		fmt.Fprintf(&b, "key %q %s", f.Key, f.Message)
	default:
		fmt.Fprintf(&b, "key %q: %s", f.Key, f.Message)
	}
	return b.String()
}

// linter checks files and counts what it found.
type linter struct {
	w                io.Writer
	json             bool
	keySet           []jwe.PublicKey // --keys; nil without
	findings         []finding       // kept for --format json
	errors, warnings int
}

func (l *linter) file(path string) error {
	data, err := readFile(path, maxManifestSize)
	if err != nil {
		return err
	}
	f, err := manifest.Parse(data)
	if err != nil {
		l.report(finding{File: path, Severity: "error", Message: fmt.Sprintf("not checked: not YAML or JSON: %v", err)})
		return nil
	}
	for _, s := range f.Secrets() {
		l.secret(path, s)
	}
	return nil
}

// secret lints the values of s. What may be plain text in git, or what
// cannot be checked, is an error; so, with --keys, is a value the webhook
// would refuse.
func (l *linter) secret(path string, s *manifest.Secret) {
	if s.Err != nil {
		l.report(finding{File: path, Line: s.Line, Secret: s.String(), Severity: "error", Message: fmt.Sprintf("not checked: %v", s.Err)})
	}
	for _, v := range s.Values {
		at := finding{File: path, Line: v.Line, Secret: s.String(), Key: v.Key, Severity: "error"}
		if v.Err != nil && v.Bytes == nil && !errors.Is(v.Err, manifest.ErrNotBase64) {
			at.Message = fmt.Sprintf("not checked: it %v", v.Err)
			l.report(at)
			continue
		}
		obj, problem := parseValue(v)
		if obj == nil {
			at.Message = problem
			l.report(at)
			continue
		}
		if l.keySet != nil {
			if msg := l.unknownKey(obj); msg != "" {
				at.Message = msg
				l.report(at)
			}
		}
		switch err := scopeMismatch(s, obj); {
		case obj.Scope.Kind() == scopeCluster:
			at.Severity, at.Message = "warning", "is bound to no namespace (cluster scope): any Secret can use it; re-encrypt it with --scope strict"
			l.report(at)
		case err != nil && l.keySet != nil:
			at.Message = fmt.Sprintf("%v; the webhook will refuse it here", err)
			l.report(at)
		case err != nil:
			at.Severity, at.Message = "warning", fmt.Sprintf("%v; the webhook will refuse it here", err)
			l.report(at)
		}
	}
}

// unknownKey says why no recipient of obj is in the key set, or "".
func (l *linter) unknownKey(obj *jwe.Object) string {
	kids := kidsOf(obj)
	for _, kid := range kids {
		if kid == "" && len(l.keySet) == 1 {
			return "" // the webhook uses its one key for a value that names none
		}
		if slices.ContainsFunc(l.keySet, func(pk jwe.PublicKey) bool { return pk.KeyID == kid }) {
			return ""
		}
	}
	return fmt.Sprintf("no recipient is a key of the cluster's key set (kid %s); the webhook will refuse it", strings.Join(quoteAll(kids), ", "))
}

func (l *linter) report(f finding) {
	if f.Severity == "warning" {
		l.warnings++
	} else {
		l.errors++
	}
	if l.json {
		l.findings = append(l.findings, f)
		return
	}
	fmt.Fprintln(l.w, f.text())
}

// flush writes the findings as JSON, for --format json.
func (l *linter) flush() error {
	if !l.json {
		return nil
	}
	out := struct {
		Findings []finding `json:"findings"`
		Errors   int       `json:"errors"`
		Warnings int       `json:"warnings"`
	}{Findings: l.findings, Errors: l.errors, Warnings: l.warnings}
	if out.Findings == nil {
		out.Findings = []finding{}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(l.w, "%s\n", b)
	return err
}
