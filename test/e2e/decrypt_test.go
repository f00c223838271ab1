package e2e_test

import (
	"strings"
	"testing"

	"github.com/jwe-webhook/jwe-webhook/test/e2e/harness"
)

// TestApplyDecrypts applies Secrets whose values are JWEs, in stringData and
// in data, for each scope, and expects the plaintext through the API and
// encrypted at rest in etcd.
func TestApplyDecrypts(t *testing.T) {
	ns := newNamespace(t)
	tests := []struct {
		name     string
		scope    harness.Scope
		inData   bool // the JWE goes base64-encoded into data, else into stringData
		multiple bool // several JWE values and a plain one
	}{
		{name: "stringdata-strict", scope: harness.Scope{Namespace: ns, Name: "stringdata-strict"}},
		{name: "data-strict", scope: harness.Scope{Namespace: ns, Name: "data-strict"}, inData: true},
		{name: "stringdata-namespace", scope: harness.Scope{Namespace: ns}},
		{name: "data-namespace", scope: harness.Scope{Namespace: ns}, inData: true},
		{name: "stringdata-cluster", scope: harness.Scope{}},
		{name: "data-cluster", scope: harness.Scope{}, inData: true},
		{name: "data-several-keys", scope: harness.Scope{Namespace: ns, Name: "data-several-keys"}, inData: true, multiple: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := map[string]string{"password": plaintext(t, "password")}
			if tt.multiple {
				want["api-token"] = plaintext(t, "token")
				want["username"] = "hr-app" // not a JWE: passes through
			}
			s := newSecret(ns, tt.name)
			for k, v := range want {
				value := v
				if k != "username" {
					value = encrypt(t, v, tt.scope)
				}
				if tt.inData {
					if s.Data == nil {
						s.Data = map[string][]byte{}
					}
					s.Data[k] = []byte(value)
				} else {
					if s.StringData == nil {
						s.StringData = map[string]string{}
					}
					s.StringData[k] = value
				}
			}
			mustApply(t, s)
			assertStored(t, ns, tt.name, want)
		})
	}
}

// TestReapply checks that re-applying an unchanged manifest changes nothing and
// that applying a new value updates the Secret, with client-side and
// server-side apply.
func TestReapply(t *testing.T) {
	ns := newNamespace(t)
	for _, mode := range []struct {
		name  string
		flags []string
	}{
		{name: "client-side"},
		{name: "server-side", flags: []string{"--server-side"}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			name := "reapply-" + mode.name
			scope := harness.Scope{Namespace: ns, Name: name}
			first := plaintext(t, "first")
			s := newSecret(ns, name)
			s.StringData = map[string]string{"password": encrypt(t, first, scope)}
			mustApply(t, s, mode.flags...)
			rv := assertStored(t, ns, name, map[string]string{"password": first}).Metadata.ResourceVersion

			mustApply(t, s, mode.flags...)
			again := assertStored(t, ns, name, map[string]string{"password": first})
			if again.Metadata.ResourceVersion != rv {
				t.Errorf("re-applying the same manifest changed resourceVersion %s to %s", rv, again.Metadata.ResourceVersion)
			}

			second := plaintext(t, "second")
			s.StringData["password"] = encrypt(t, second, scope)
			mustApply(t, s, mode.flags...)
			changed := assertStored(t, ns, name, map[string]string{"password": second})
			if changed.Metadata.ResourceVersion == rv {
				t.Errorf("applying a new value kept resourceVersion %s", rv)
			}
		})
	}
}

// TestDryRunServer checks that server-side dry runs of JWE Secrets succeed
// (the webhook declares no side effects) and store nothing: neither a new
// Secret nor a new value for an existing one.
func TestDryRunServer(t *testing.T) {
	ns := newNamespace(t)
	name := "dry-run"
	scope := harness.Scope{Namespace: ns, Name: name}
	s := newSecret(ns, name)
	s.StringData = map[string]string{"password": encrypt(t, plaintext(t, "dry"), scope)}
	dryRun := func(t *testing.T) {
		t.Helper()
		out, err := apply(t, s, "--dry-run=server")
		if err != nil {
			t.Fatalf("kubectl apply --dry-run=server: %v", err)
		}
		if !strings.Contains(out, "server dry run") {
			t.Errorf("kubectl output %q does not mention the server dry run", out)
		}
	}
	t.Run("create", func(t *testing.T) {
		dryRun(t)
		assertAbsent(t, ns, name)
	})
	t.Run("update", func(t *testing.T) {
		stored := plaintext(t, "stored")
		s.StringData["password"] = encrypt(t, stored, scope)
		mustApply(t, s)
		s.StringData["password"] = encrypt(t, plaintext(t, "dry"), scope)
		dryRun(t)
		assertStored(t, ns, name, map[string]string{"password": stored})
	})
}

// TestPassThrough checks that Secrets without JWE values, or marked to be
// skipped, are stored exactly as given.
func TestPassThrough(t *testing.T) {
	ns := newNamespace(t)
	jwe := encrypt(t, plaintext(t, "skipped"), harness.Scope{Namespace: ns, Name: "skipped"})
	tests := []struct {
		name        string
		data        map[string][]byte
		annotations map[string]string
	}{{
		name: "no-jwe",
		data: map[string][]byte{
			"binary":     {0x00, 0xff, 0x10, 0x80, '.', 0x0a},
			"dots":       []byte("aaaa.bbbb.cccc.dddd.eeee"),
			"json":       []byte(`{"user":"hr-app","port":5432}`),
			"jwt":        []byte("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"),
			"empty":      {},
			"multi-line": []byte("line one\nline two\n"),
		},
	}, {
		name:        "skip-annotation",
		data:        map[string][]byte{"password": []byte(jwe)},
		annotations: map[string]string{skipAnnotation: "true"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSecret(ns, tt.name)
			s.Data = tt.data
			s.Metadata.Annotations = tt.annotations
			mustApply(t, s)
			want := map[string]string{}
			for k, v := range tt.data {
				want[k] = string(v)
			}
			assertStored(t, ns, tt.name, want)
		})
	}
}
