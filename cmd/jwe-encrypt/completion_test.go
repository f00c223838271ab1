package main

import (
	"strings"
	"testing"
)

// Every option completion offers is one its command's usage text names.
func TestCompletionFlags(t *testing.T) {
	usages := map[string]string{"": encryptUsage, "inspect": inspectUsage, "lint": lintUsage, "rekey": rekeyUsage,
		"decrypt": decryptCommandUsage, "pubkey": pubkeyUsage, "completion": completionUsage, "help": usage}
	for cmd, flags := range commandFlags {
		u, ok := usages[cmd]
		if !ok {
			t.Errorf("command %q has no usage text here", cmd)
			continue
		}
		for _, f := range flags {
			if !strings.Contains(u, f+" ") && !strings.Contains(u, f+",") && !strings.Contains(u, f+"\n") {
				t.Errorf("command %q: completion offers %s, which its usage does not name", cmd, f)
			}
		}
	}
}
