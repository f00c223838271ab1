package e2e_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"os/exec"
	"slices"
	"testing"

	"github.com/jwe-webhook/jwe-webhook/test/e2e/harness"
)

// TestGitOpsNoDrift does what GitOps tools do to decide whether the cluster
// matches git. After a manifest with JWE values is applied, kubectl diff
// finds no difference: the client-side diff after a client-side apply, both
// diffs after a server-side apply (as Flux and Argo CD with ServerSideApply
// do). A server-side dry-run apply (Flux's drift detection, Argo CD's
// server-side diff) returns the live Secret's data byte for byte. The webhook
// decrypts the dry run as it did the write, so git's ciphertext and the live
// plaintext compare equal. A value re-encrypted to the same plaintext is no
// change either; a new plaintext is one.
func TestGitOpsNoDrift(t *testing.T) {
	ns := newNamespace(t)
	clientDiff := []string{"diff"}
	serverDiff := []string{"diff", "--server-side"}
	for _, tt := range []struct {
		name   string
		apply  []string   // extra flags of kubectl apply
		diffs  [][]string // the diffs that must find nothing
		inData bool
	}{
		{name: "client-side-stringdata", diffs: [][]string{clientDiff}},
		{name: "client-side-data", diffs: [][]string{clientDiff}, inData: true},
		{name: "server-side-stringdata", apply: []string{"--server-side"}, diffs: [][]string{clientDiff, serverDiff}},
		{name: "server-side-data", apply: []string{"--server-side"}, diffs: [][]string{clientDiff, serverDiff}, inData: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			name := "gitops-" + tt.name
			scope := harness.Scope{Namespace: ns, Name: name}
			want := map[string]string{"password": plaintext(t, "password"), "username": "hr-app"}
			manifest := func() string {
				s := newSecret(ns, name)
				values := map[string]string{"password": encrypt(t, want["password"], scope), "username": want["username"]}
				if tt.inData {
					s.Data = map[string][]byte{}
					for k, v := range values {
						s.Data[k] = []byte(v)
					}
				} else {
					s.StringData = values
				}
				return writeManifest(t, s)
			}
			path := manifest()
			if _, err := applyFile(t.Context(), path, tt.apply...); err != nil {
				t.Fatalf("kubectl apply: %v", err)
			}
			live := assertStored(t, ns, name, want)

			for _, diff := range tt.diffs {
				if changed, out := kubectlDiff(t, append(diff, "-f", path)...); changed {
					t.Errorf("kubectl %v reports a difference after apply:\n%s", diff, out)
				}
			}
			// Server-side dry runs as Flux and Argo CD make them: the
			// field manager of the apply, or another one forcing conflicts.
			for _, flags := range [][]string{tt.apply, {"--server-side", "--force-conflicts", "--field-manager=gitops-diff"}} {
				dry := dryRunData(t, path, flags...)
				if !maps.EqualFunc(dry, live.Data, bytes.Equal) {
					t.Errorf("dry-run apply %v returns data keys %v, the live Secret %v (or other bytes)",
						flags, slices.Sorted(maps.Keys(dry)), slices.Sorted(maps.Keys(live.Data)))
				}
			}

			lastDiff := tt.diffs[len(tt.diffs)-1]
			// Re-encrypted in git, same plaintext: still in sync.
			if changed, out := kubectlDiff(t, append(lastDiff, "-f", manifest())...); changed {
				t.Errorf("a value re-encrypted to the same plaintext shows as a difference:\n%s", out)
			}
			// A new plaintext in git: out of sync, as it should be.
			want["password"] = plaintext(t, "rotated")
			if changed, _ := kubectlDiff(t, append(lastDiff, "-f", manifest())...); !changed {
				t.Errorf("kubectl %v finds no difference for a new value", lastDiff)
			}
		})
	}
}

// kubectlDiff runs kubectl diff: changed is whether it found a difference
// (exit status 1); any other failure fails the test. kubectl masks Secret
// values in its output.
func kubectlDiff(t *testing.T, args ...string) (changed bool, out string) {
	t.Helper()
	out, err := cluster.Kubectl(t.Context(), nil, args...)
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 {
		return true, out
	}
	if err != nil {
		t.Fatalf("kubectl %v: %v", args, err)
	}
	return false, out
}

// dryRunData returns the data of a dry-run apply of path with flags.
func dryRunData(t *testing.T, path string, flags ...string) map[string][]byte {
	t.Helper()
	out := kubectl(t, append([]string{"apply", "--dry-run=server", "-o", "json", "-f", path}, flags...)...)
	var s Secret
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("decode the dry run: %v", err)
	}
	return s.Data
}
