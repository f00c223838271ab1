package vault

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// scheme starts every Vault key ID.
const scheme = "vault://"

// KeyIDFor returns the key ID of version of the transit key named key on
// mount: "vault://<mount>/<key>?version=<version>", or the family ID
// "vault://<mount>/<key>" when version is 0. It does not check its arguments;
// ParseKeyID does.
func KeyIDFor(mount, key string, version int) string {
	id := scheme + mount + "/" + key
	if version == 0 {
		return id
	}
	return id + "?version=" + strconv.Itoa(version)
}

// ParseKeyID splits a key ID of the form "vault://<mount>/<key>[?version=N]".
// The mount may be nested ("kms/transit"); the key is the last path segment.
// version is 0 when the ID names no version, else at least 1, written without
// leading zeros so that each version has exactly one ID.
func ParseKeyID(kid string) (mount, key string, version int, err error) {
	rest, ok := strings.CutPrefix(kid, scheme)
	if !ok {
		return "", "", 0, fmt.Errorf("key ID %q does not start with %q", kid, scheme)
	}
	rest, query, hasQuery := strings.Cut(rest, "?")
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return "", "", 0, fmt.Errorf("key ID %q is not %s<mount>/<key>", kid, scheme)
	}
	mount, key = rest[:i], rest[i+1:]
	if err := checkMount(mount); err != nil {
		return "", "", 0, fmt.Errorf("key ID %q: %w", kid, err)
	}
	if err := checkKeyName(key); err != nil {
		return "", "", 0, fmt.Errorf("key ID %q: %w", kid, err)
	}
	if hasQuery {
		if version, err = parseVersionQuery(query); err != nil {
			return "", "", 0, fmt.Errorf("key ID %q: %w", kid, err)
		}
	}
	return mount, key, version, nil
}

func parseVersionQuery(query string) (int, error) {
	v, ok := strings.CutPrefix(query, "version=")
	if !ok {
		return 0, errors.New(`query must be "version=N"`)
	}
	if v == "" || v[0] < '1' || v[0] > '9' || len(v) > 9 {
		return 0, fmt.Errorf("version %q is not a number from 1 without leading zeros", v)
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("version %q is not a number from 1 without leading zeros", v)
	}
	return n, nil
}

// checkMount accepts a mount path of one or more segments of letters,
// digits, '_', '-' and '.', without a leading or trailing slash.
func checkMount(mount string) error {
	if mount == "" {
		return errors.New("empty mount")
	}
	for seg := range strings.SplitSeq(mount, "/") {
		if seg == "" || seg == "." || seg == ".." || !validName(seg, "_-.") {
			return fmt.Errorf("mount %q is not a path of letters, digits, '_', '-' and '.'", mount)
		}
	}
	return nil
}

// checkKeyName accepts what Vault accepts as a transit key name: letters,
// digits and '_', with '-', '.' and '@' allowed inside.
func checkKeyName(key string) error {
	if key == "" || !validName(key, "_-.@") || strings.ContainsAny(key[:1]+key[len(key)-1:], "-.@") {
		return fmt.Errorf("key name %q is not letters, digits, '_', '-', '.' and '@' (no '-', '.' or '@' at either end)", key)
	}
	return nil
}

func validName(s, extra string) bool {
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune(extra, r)) {
			return false
		}
	}
	return true
}
