package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
)

// kidsOf returns the key IDs of obj's recipients, "" for one that names none.
func kidsOf(obj *jwe.Object) []string {
	kids := make([]string, len(obj.Recipients))
	for i, rc := range obj.Recipients {
		kids[i] = rc.KeyID
	}
	return kids
}

func kidsOfKeys(keys []jwe.PublicKey) []string {
	kids := make([]string, len(keys))
	for i, k := range keys {
		kids[i] = k.KeyID
	}
	return kids
}

// keyVersion returns the version number a key service's kid names: a Cloud
// KMS key version's last path element, a Vault key's ?version=N.
func keyVersion(kid string) (int, bool) {
	var s string
	switch {
	case strings.HasPrefix(kid, vaultScheme):
		_, s, _ = strings.Cut(kid, "?version=")
	case strings.Contains(kid, "/cryptoKeyVersions/"):
		s = kid[strings.LastIndex(kid, "/")+1:]
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// quoteAll quotes each of s.
func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = fmt.Sprintf("%q", v)
	}
	return out
}
