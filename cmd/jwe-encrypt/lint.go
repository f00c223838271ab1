package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/jwe-webhook/jwe-webhook/internal/manifest"
)

const lintUsage = `Usage:
    jwe-encrypt lint [--strict] PATH...

Reports every value of a Secret that is not encrypted, one line each:

    FILE:LINE: Secret NAMESPACE/NAME: key "KEY" is not encrypted

and exits with status 1 if there is any, or any value that is not a valid
JWE. Manifests are YAML or JSON, one or more documents, Lists too.
Directories are searched for *.yaml, *.yml and *.json files, skipping .git,
node_modules and vendor; files named on the command line are read whatever
their name. Nothing is decrypted and no value is printed.

Warnings, which fail the run only with --strict: values bound to no
namespace (cluster scope), values bound to another Secret than the one that
holds them (unless a tool such as kustomize renames it), and files that are
not YAML (Helm templates, say), which are not checked.

Options:
    --strict   Fail on warnings too.

Examples:
    $ jwe-encrypt lint .
    $ jwe-encrypt lint --strict deploy/ secrets.yaml
`

func (c *cli) lint(args []string) error {
	var strict bool
	fs := flag.NewFlagSet("jwe-encrypt lint", flag.ContinueOnError)
	fs.BoolVar(&strict, "strict", false, "")
	paths, err := c.parseFlags(fs, lintUsage, args)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return withHint(errors.New("lint needs a path"), "give files or directories: jwe-encrypt lint .")
	}
	l := &linter{w: c.stdout}
	for _, p := range paths {
		if err := l.walk(p); err != nil {
			return err
		}
	}
	if l.errors == 0 && (!strict || l.warnings == 0) {
		return nil
	}
	err = fmt.Errorf("lint: %s, %s", count(l.errors, "error"), count(l.warnings, "warning"))
	if l.errors == 0 {
		return withHint(err, "--strict fails on warnings; re-encrypt values with --scope strict, or leave out --strict")
	}
	return withHint(err, "encrypt the values in place: jwe-encrypt -r PUBLIC-KEY -f FILE -i")
}

// linter checks files and counts what it found.
type linter struct {
	w                io.Writer
	errors, warnings int
}

// walk lints path: a file, or the manifests in a directory tree.
func (l *linter) walk(root string) error {
	return walkManifests(root, l.file)
}

func (l *linter) file(path string) error {
	data, err := readFile(path, maxManifestSize)
	if err != nil {
		return err
	}
	f, err := manifest.Parse(data)
	if err != nil {
		l.warnf("%s: warning: not checked: not YAML or JSON: %v", path, err)
		return nil
	}
	for _, s := range f.Secrets() {
		l.secret(path, s)
	}
	return nil
}

// secret lints the values of s. What may be plain text in git is an error:
// a value that is not encrypted, or a data value that is not even base64.
// What cannot be read as a Secret (a template, say) is a warning.
func (l *linter) secret(path string, s *manifest.Secret) {
	if s.Err != nil {
		l.warnf("%s:%d: warning: Secret %s: not checked: %v", path, s.Line, s, s.Err)
	}
	for _, v := range s.Values {
		where := fmt.Sprintf("%s:%d", path, v.Line)
		if v.Err != nil && v.Bytes == nil && !errors.Is(v.Err, manifest.ErrNotBase64) {
			l.warnf("%s: warning: Secret %s: key %q not checked: it %v", where, s, v.Key, v.Err)
			continue
		}
		obj, problem := parseValue(v)
		switch {
		case obj == nil:
			l.errorf("%s: Secret %s: key %q %s", where, s, v.Key, problem)
		case obj.Scope.Kind() == scopeCluster:
			l.warnf("%s: warning: Secret %s: key %q is bound to no namespace (cluster scope): any Secret can use it; re-encrypt it with --scope strict", where, s, v.Key)
		default:
			if err := scopeMismatch(s, obj); err != nil {
				l.warnf("%s: warning: Secret %s: key %q: %v; the webhook will refuse it here", where, s, v.Key, err)
			}
		}
	}
}

func (l *linter) errorf(format string, args ...any) {
	l.errors++
	fmt.Fprintf(l.w, format+"\n", args...)
}

func (l *linter) warnf(format string, args ...any) {
	l.warnings++
	fmt.Fprintf(l.w, format+"\n", args...)
}
