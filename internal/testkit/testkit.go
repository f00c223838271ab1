// Package testkit holds the few rules that tests in several packages share:
// when a missing dependency skips a test and when it fails it, and what an
// error message may not contain. Only tests import it.
package testkit

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// InCI reports whether the tests run in CI: the environment variable CI is
// set to anything but "", "false" or "0". In CI a missing dependency fails
// a test instead of skipping it, so that a broken setup cannot pass silently.
func InCI() bool {
	switch ci := strings.TrimSpace(os.Getenv("CI")); {
	case ci == "", ci == "0", strings.EqualFold(ci, "false"):
		return false
	}
	return true
}

// Require reports a missing dependency, described by why: the test fails in
// CI (see InCI) and is skipped elsewhere, saying how to make it run.
func Require(t testing.TB, why string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s; CI=%s, so the test must run", why, os.Getenv("CI"))
	}
	t.Skipf("%s (skipped; with CI set this fails)", why)
}

// MinEcho is the shortest fragment of an input that Echo looks for: shorter
// ones occur in ordinary words of a message by chance.
const MinEcho = 8

// Echo returns the first fragment of input, at least minLen bytes long,
// that msg contains, or "" when there is none. The fragments are the whole
// input, its lines and its dot-separated parts, each trimmed of spaces: an
// error that quotes a value, a PEM line or a part of a compact JWE shows up,
// whether quoted or not.
func Echo(msg string, input []byte, minLen int) string {
	seen := map[string]bool{}
	for _, sep := range [][]byte{nil, []byte("\n"), []byte(".")} {
		parts := [][]byte{input}
		if sep != nil {
			parts = bytes.Split(input, sep)
		}
		for _, p := range parts {
			f := string(bytes.TrimSpace(p))
			if len(f) < minLen || seen[f] {
				continue
			}
			seen[f] = true
			if strings.Contains(msg, f) {
				return f
			}
		}
	}
	return ""
}
