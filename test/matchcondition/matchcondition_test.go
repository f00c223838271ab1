// Package matchcondition_test proves that the matchConditions of the
// MutatingWebhookConfiguration send the webhook every Secret it would act on:
// the expressions are read from manifests/base and evaluated by the
// apiserver's own CEL library (k8s.io/apiserver, the version of the
// kube-apiserver that test/tools builds), with its environment, object
// conversion and cost limits, against jwe.Detect and the skip annotation.
//
// It is a module of its own because k8s.io/apiserver is a heavy dependency of
// a test only.
package matchcondition_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/apiserver/pkg/admission"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/cel/environment"
	"sigs.k8s.io/yaml"

	review "github.com/jwe-webhook/jwe-webhook/internal/admission"
	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
)

// manifest is the one place the expressions are written; every overlay and
// the e2e harness register it.
const manifest = "../../manifests/base/mutatingwebhookconfiguration.yaml"

// minVersion is the oldest Kubernetes with matchConditions GA; a 1.30
// apiserver validates new expressions in the environment of 1.29.
var minVersion = version.MajorMinor(1, 29)

// conditions returns the matchConditions of the manifest's only webhook.
func conditions(t testing.TB) []admissionregistrationv1.MatchCondition {
	t.Helper()
	raw, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	if err := yaml.UnmarshalStrict(raw, &mwc); err != nil {
		t.Fatalf("%s: %v", manifest, err)
	}
	if len(mwc.Webhooks) != 1 || len(mwc.Webhooks[0].MatchConditions) == 0 {
		t.Fatalf("%s: want one webhook with matchConditions", manifest)
	}
	return mwc.Webhooks[0].MatchConditions
}

func accessors(conds []admissionregistrationv1.MatchCondition) []plugincel.ExpressionAccessor {
	exprs := make([]plugincel.ExpressionAccessor, len(conds))
	for i, c := range conds {
		exprs[i] = &matchconditions.MatchCondition{Name: c.Name, Expression: c.Expression}
	}
	return exprs
}

// declarations are the variables a webhook's matchConditions see.
var declarations = plugincel.OptionalVariableDeclarations{HasAuthorizer: true, StrictCost: true}

// newMatcher compiles the manifest's conditions as the apiserver does for a
// registered webhook (failurePolicy Fail, strict cost).
func newMatcher(t testing.TB) matchconditions.Matcher {
	t.Helper()
	compiler := plugincel.NewConditionCompiler(environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion(), true))
	fail := admissionregistrationv1.Fail
	return matchconditions.NewMatcher(compiler.CompileCondition(accessors(conditions(t)), declarations, environment.StoredExpressions),
		&fail, "webhook", "admit", "secrets.jwe-webhook.io")
}

// sent reports whether the apiserver would call the webhook for op on s; an
// error is what the apiserver would refuse the request with.
func sent(t testing.TB, m matchconditions.Matcher, op admission.Operation, s *corev1.Secret) (bool, error) {
	t.Helper()
	gvk := corev1.SchemeGroupVersion.WithKind("Secret")
	var obj, old runtime.Object
	if s != nil {
		obj = s
	}
	if op == admission.Update || op == admission.Delete {
		old = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns"}}
	}
	attrs := admission.NewAttributesRecord(obj, old, gvk, "ns", "s", corev1.SchemeGroupVersion.WithResource("secrets"), "",
		op, &metav1.CreateOptions{}, false, &user.DefaultInfo{Name: "ci"})
	r := m.Match(t.Context(), &admission.VersionedAttributes{
		Attributes: attrs, VersionedKind: gvk, VersionedObject: obj, VersionedOldObject: old,
	}, nil, nil)
	return r.Matches, r.Error
}

// secret is a Secret with data values as given.
func secret(data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns"}, Data: data}
}

// mayBeJWE is what the expression is meant to decide, written on raw bytes:
// a value of at least 4 bytes that starts with JSON whitespace or 'e', with
// '{' and whitespace, or with '{"' and the first letter of a JWE JSON member
// and a byte that shares its top six bits with the member's second letter
// (the base64 text's fifth character holds only those).
func mayBeJWE(v []byte) bool {
	const space = " \t\n\r"
	switch {
	case len(v) < 4:
		return false
	case strings.IndexByte(space+"e", v[0]) >= 0:
		return true
	case v[0] != '{':
		return false
	case strings.IndexByte(space, v[1]) >= 0:
		return true
	case v[1] != '"':
		return false
	}
	for _, m := range []string{"protected", "unprotected", "header", "recipients", "aad", "encrypted_key", "iv", "ciphertext", "tag"} {
		if v[2] == m[0] && v[3]>>2 == m[1]>>2 {
			return true
		}
	}
	return false
}

// TestCompiles checks that the expressions compile in the environment a
// 1.30 apiserver checks new webhooks in and in the current one.
func TestCompiles(t *testing.T) {
	for _, v := range []*version.Version{minVersion, environment.DefaultCompatibilityVersion()} {
		compiler := plugincel.NewCompiler(environment.MustBaseEnvSet(v, true))
		for _, a := range accessors(conditions(t)) {
			if r := compiler.CompileCELExpression(a, declarations, environment.NewExpressions); r.Error != nil {
				t.Errorf("compatibility version %s: %s: %v", v, a.(*matchconditions.MatchCondition).Name, r.Error)
			}
		}
	}
}

// vectors are real JWEs, compact and JSON, from internal/jwe's test data.
func vectors(t testing.TB) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "internal", "jwe", "testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vs []struct {
		JWE string `json:"jwe"`
	}
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, v := range vs {
		out = append(out, v.JWE)
	}
	if len(out) == 0 {
		t.Fatal("no vectors")
	}
	return out
}

// values are seeds for the property: JWEs with the whitespace the contract
// allows, values whose base64 begins like a JWE's, and ordinary values.
func values(t testing.TB) [][]byte {
	var out [][]byte
	for _, v := range vectors(t) {
		// One to four bytes of whitespace move the value across the base64
		// text's groups of three bytes.
		out = append(out, []byte(v), []byte(" "+v), []byte("\t\t"+v), []byte("\r\n"+v+"\r\n"), []byte("   "+v),
			[]byte("\n \t\r"+v), []byte("\v"+v), []byte("\u00a0"+v))
	}
	for _, s := range []string{
		"", " ", "\t", "\n", "\r", "e", "{", "x", "y", "z", "d", "f", "|", "\x08", "\x0b", "\x0c", "\x0e", "!", "\x1f",
		"{}", " {}", `{"ciphertext":""}`, ` {"ciphertext":""}`, "eyJ", "ey", "e.", "eyJ.a.b.c.d",
		`{"iv":"","ciphertext":""}`, "{ \"iv\":\"\",\"ciphertext\":\"\"}", "{\r\n\"tag\":\"\",\"ciphertext\":\"\"}", "{\n \"protected\":\"\",\"ciphertext\":\"\"}", `{"ivy"`, `{"tag`, `{"ta`, `{"t`,
		`{"auths":{"registry.example":{"auth":"dTpw"}}}`, `{"type":"service_account"}`, `{"Protected":""}`,
		"hunter2", "postgres://u:p@db:5432/app",
		"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
		"H4sIAAAAAAAA/+y9", // a Helm release
		"\xff\xfe\x00binary", "\x7b\xff", "\x65\x00",
	} {
		out = append(out, []byte(s))
	}
	return out
}

// check is the property for one value, alone and, when beside is set, among
// plain values: Detect(v) implies the webhook is called, and it is called
// exactly when mayBeJWE(v).
func check(t *testing.T, m matchconditions.Matcher, v []byte, beside bool) {
	t.Helper()
	if jwe.Detect(v) && !mayBeJWE(v) {
		t.Fatalf("Detect(%q) = true but it does not start as the contract says", short(v))
	}
	secrets := []map[string][]byte{{"value": v}}
	if beside {
		secrets = append(secrets, map[string][]byte{"a": []byte("plain"), "value": v, "z": []byte("-----BEGIN")})
	}
	for _, data := range secrets {
		got, err := sent(t, m, admission.Create, secret(data))
		if err != nil {
			t.Fatalf("value %q: %v", short(v), err)
		}
		if got != mayBeJWE(v) {
			t.Fatalf("value %q: webhook called = %v, want %v (Detect = %v)", short(v), got, mayBeJWE(v), jwe.Detect(v))
		}
	}
}

// short is the start of v, for messages.
func short(v []byte) []byte { return v[:min(len(v), 24)] }

func TestDetectedValuesAreSent(t *testing.T) {
	m := newMatcher(t)
	detected := 0
	for _, v := range values(t) {
		check(t, m, v, true)
		if jwe.Detect(v) {
			detected++
		}
	}
	if detected < len(vectors(t)) {
		t.Fatalf("only %d seeds are detected as JWEs", detected)
	}
}

// TestEveryStart covers every first two bytes, every second with each
// class of third byte after '{', and every third and fourth byte after '{"':
// the bytes that change the base64 text's characters the expression reads.
func TestEveryStart(t *testing.T) {
	m := newMatcher(t)
	for b0 := range 256 {
		for b1 := range 256 {
			check(t, m, []byte{byte(b0), byte(b1), 'x', 'y'}, false)
		}
		check(t, m, []byte{byte(b0)}, false)
	}
	for b1 := range 256 {
		for _, b2 := range []byte{0x00, 0x40, 0x80, 0xc0} {
			check(t, m, []byte{'{', byte(b1), b2, 'y'}, false)
		}
	}
	for b2 := range 256 {
		for b3 := 0; b3 < 256; b3 += 4 {
			check(t, m, []byte{'{', '"', byte(b2), byte(b3), 'z'}, false)
		}
	}
}

func TestSecrets(t *testing.T) {
	m := newMatcher(t)
	jweValue := []byte(vectors(t)[0])
	for _, tt := range []struct {
		name string
		op   admission.Operation
		s    *corev1.Secret
		want bool
	}{
		{"no data", admission.Create, secret(nil), false},
		{"empty value", admission.Create, secret(map[string][]byte{"a": {}}), false},
		{"plain", admission.Create, secret(map[string][]byte{"user": []byte("admin"), "password": []byte("hunter2")}), false},
		{"helm release", admission.Create, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "sh.helm.release.v1.app.v1", Namespace: "ns", Labels: map[string]string{"owner": "helm"}},
			Type:       "helm.sh/release.v1",
			Data:       map[string][]byte{"release": []byte("H4sIAAAAAAAA/+y9")},
		}, false},
		{"tls", admission.Create, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "tls", Namespace: "ns"},
			Type:       corev1.SecretTypeTLS,
			Data: map[string][]byte{
				"tls.crt": []byte("-----BEGIN CERTIFICATE-----\n"),
				"tls.key": []byte("-----BEGIN EC PRIVATE KEY-----\n"),
			},
		}, false},
		{"docker config", admission.Create, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "pull", Namespace: "ns"},
			Type:       corev1.SecretTypeDockerConfigJson,
			Data:       map[string][]byte{".dockerconfigjson": []byte(`{"auths":{"registry.example":{"auth":"dTpw"}}}`)},
		}, false},
		{"json credentials", admission.Create, secret(map[string][]byte{"key.json": []byte("{\"type\": \"service_account\"}")}), false},
		{"jwe", admission.Create, secret(map[string][]byte{"password": jweValue}), true},
		{"jwe on update", admission.Update, secret(map[string][]byte{"password": jweValue}), true},
		{"one leading space", admission.Create, secret(map[string][]byte{"password": append([]byte(" "), jweValue...)}), true},
		{"delete", admission.Delete, nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sent(t, m, tt.op, tt.s)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("webhook called = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSkipAnnotation checks that the webhook is not called exactly when it
// would skip the Secret: when the annotation parses as true.
func TestSkipAnnotation(t *testing.T) {
	m := newMatcher(t)
	for _, a := range []string{"", "1", "0", "t", "f", "T", "F", "true", "false", "TRUE", "FALSE", "True", "False",
		"yes", "on", " true", "true ", "tRUE", "2", "truee"} {
		s := secret(map[string][]byte{"password": []byte(vectors(t)[0])})
		s.Annotations = map[string]string{review.SkipAnnotation: a, "other": "true"}
		skip, _ := strconv.ParseBool(a)
		got, err := sent(t, m, admission.Create, s)
		if err != nil {
			t.Fatalf("annotation %q: %v", a, err)
		}
		if got == skip {
			t.Errorf("annotation %q: webhook called = %v, but the webhook skips = %v", a, got, skip)
		}
	}
}

// TestCost checks that the largest Secrets stay within the apiserver's CEL
// cost limits: an error there would refuse the Secret (failurePolicy Fail)
// even while the webhook is up.
func TestCost(t *testing.T) {
	m := newMatcher(t)
	const max = 1 << 20 // a Secret's data is at most 1 MiB
	many := map[string][]byte{}
	for i := range 20000 {
		many["k"+strconv.Itoa(i)] = []byte("xxxxxxxx")
	}
	for name, data := range map[string]map[string][]byte{
		"one large plain value": {"big": bytes.Repeat([]byte("x"), max-3)},
		"one large jwe-shaped":  {"big": append([]byte("eyJ"), bytes.Repeat([]byte("A"), max-6)...)},
		"20000 keys":            many,
	} {
		if _, err := sent(t, m, admission.Create, secret(data)); err != nil {
			t.Errorf("%s: %v", name, strings.TrimSpace(err.Error()))
		}
	}
}
