package e2e_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/jwe-webhook/jwe-webhook/internal/kms/keyconfig"
	"github.com/jwe-webhook/jwe-webhook/test/e2e/harness"
)

// manifestsDir is the repository's kustomize tree.
const manifestsDir = "../../manifests"

// overlays are the installs manifests/ must offer; any other overlay found
// there is checked too.
var overlays = []string{"local-key", "gcp-kms", "vault", "aws-kms", "azure-key-vault", "cert-manager"}

// TestManifests builds every overlay with kubectl kustomize, checks what a
// production install needs, and applies the result to the apiserver with a
// server-side dry run and strict field validation. cert-manager's Issuer and
// Certificate are validated against stand-in CRDs (testdata) installed for
// the purpose.
func TestManifests(t *testing.T) {
	kubectl(t, "apply", "-f", "testdata/cert-manager-crds.yaml")
	kubectl(t, "wait", "--for=condition=Established", "--timeout=60s",
		"crd/issuers.cert-manager.io", "crd/certificates.cert-manager.io")

	entries, err := os.ReadDir(filepath.Join(manifestsDir, "overlays"))
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, e := range entries {
		if e.IsDir() {
			found = append(found, e.Name())
		}
	}
	for _, want := range overlays {
		if !slices.Contains(found, want) {
			t.Errorf("manifests/overlays/%s is missing", want)
		}
	}
	for _, name := range found {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			objs := buildInstall(t, filepath.Join(manifestsDir, "overlays", name))
			checkInstall(t, objs)
			checkKeyConfig(t, objs)
			switch name {
			case "gcp-kms":
				sa := objs.get(t, "ServiceAccount", "jwe-webhook")
				if lookup(sa, "metadata", "annotations", "iam.gke.io/gcp-service-account") == nil {
					t.Error("ServiceAccount has no Workload Identity annotation")
				}
			case "aws-kms":
				sa := objs.get(t, "ServiceAccount", "jwe-webhook")
				if role, _ := lookup(sa, "metadata", "annotations", "eks.amazonaws.com/role-arn").(string); !strings.HasPrefix(role, "arn:aws:iam::") {
					t.Errorf("ServiceAccount has no IRSA role annotation: %v", role)
				}
			case "azure-key-vault":
				sa := objs.get(t, "ServiceAccount", "jwe-webhook")
				if lookup(sa, "metadata", "annotations", "azure.workload.identity/client-id") == nil {
					t.Error("ServiceAccount has no workload identity client-id annotation")
				}
				dep := objs.get(t, "Deployment", "jwe-webhook")
				if use := lookup(dep, "spec", "template", "metadata", "labels", "azure.workload.identity/use"); use != "true" {
					t.Errorf("pod template label azure.workload.identity/use = %v, want \"true\"", use)
				}
			case "cert-manager":
				checkCertManager(t, objs)
			}
		})
	}

	// An image pinned as manifests/README.md says reaches the Deployment: the
	// images block it shows (what its kustomize edit set image command
	// writes), with a digest, added to an overlay.
	t.Run("pinned-image", func(t *testing.T) {
		t.Parallel()
		const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		images, name := readmeImages(t)
		dir := t.TempDir()
		writeOverlay(t, dir, "local-key", strings.ReplaceAll(images, "sha256:…", digest))
		objs := buildInstall(t, dir)
		image := lookup(objs.get(t, "Deployment", "jwe-webhook"), "spec", "template", "spec", "containers", 0, "image")
		if want := name + "@" + digest; image != want {
			t.Errorf("Deployment runs image %v, want the pinned %s", image, want)
		}
	})

	// An install as certs/README.md describes it: an overlay plus the
	// component make-certs.sh writes.
	t.Run("make-certs", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		runProgram(t, "bash", filepath.Join(manifestsDir, "..", "certs", "make-certs.sh"), filepath.Join(dir, "pki"))
		writeOverlay(t, dir, "local-key", "components: [pki]\n")
		objs := buildInstall(t, dir)
		checkInstall(t, objs)
		objs.get(t, "Secret", "jwe-webhook-tls")
		objs.get(t, "ConfigMap", "jwe-webhook-client-ca")
		bundle, _ := lookup(objs.get(t, "MutatingWebhookConfiguration", "jwe-webhook"), "webhooks", 0, "clientConfig", "caBundle").(string)
		ca, err := os.ReadFile(filepath.Join(dir, "pki", "ca.crt"))
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := base64.StdEncoding.DecodeString(bundle); !bytes.Equal(got, ca) {
			t.Errorf("caBundle is not the CA make-certs.sh made")
		}
	})
}

// readmeImages returns the images block manifests/README.md tells users to
// add to their overlay, and the image name of its kustomize edit set image
// command, which must write the same block.
func readmeImages(t *testing.T) (block, name string) {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(manifestsDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := regexp.MustCompile("`kustomize edit set image ([^@` ]+)@sha256:…`").FindSubmatch(readme)
	yml := regexp.MustCompile("(?s)```yaml\n(\\s*images:\n.*?)\\s*```").FindSubmatch(readme)
	if cmd == nil || yml == nil {
		t.Fatal("manifests/README.md no longer shows kustomize edit set image NAME@sha256:… and an images block")
	}
	var lines []string
	indent := len(yml[1]) - len(bytes.TrimLeft(yml[1], " "))
	for line := range strings.SplitSeq(string(yml[1]), "\n") {
		lines = append(lines, line[min(indent, len(line)-len(strings.TrimLeft(line, " "))):])
	}
	block = strings.Join(lines, "\n") + "\n"
	if !strings.Contains(block, "name: "+string(cmd[1])+"\n") {
		t.Fatalf("the README's images block does not name the image of its kustomize command (%s):\n%s", cmd[1], block)
	}
	return block, string(cmd[1])
}

// writeOverlay writes dir/kustomization.yaml as a user's own overlay: the
// overlay manifests/overlays/name plus extra.
func writeOverlay(t *testing.T, dir, name, extra string) {
	t.Helper()
	overlay, err := filepath.Abs(filepath.Join(manifestsDir, "overlays", name))
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(dir, overlay)
	if err != nil {
		t.Fatal(err)
	}
	kustomization := fmt.Sprintf("resources: [%s]\n%s", rel, extra)
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(kustomization), 0o600); err != nil {
		t.Fatal(err)
	}
}

// objects are the documents of a kustomize build.
type objects []map[string]any

// buildInstall runs kubectl kustomize on dir, applies the result with a server-side
// dry run, and returns its objects.
func buildInstall(t *testing.T, dir string) objects {
	t.Helper()
	out := kubectl(t, "kustomize", dir)
	path := filepath.Join(t.TempDir(), "install.yaml")
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Kubectl(t.Context(), nil, "apply", "--dry-run=server", "--validate=strict", "-f", path); err != nil {
		t.Errorf("the apiserver refuses the install:\n%v", err)
	}
	var objs objects
	for doc := range strings.SplitSeq(out, "\n---\n") {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("kustomize output: %v", err)
		}
		objs = append(objs, obj)
	}
	return objs
}

// get returns the object of kind and name, failing the test without one.
func (objs objects) get(t *testing.T, kind, name string) map[string]any {
	t.Helper()
	for _, o := range objs {
		if o["kind"] == kind && lookup(o, "metadata", "name") == name {
			return o
		}
	}
	t.Fatalf("no %s %s in the install", kind, name)
	return nil
}

// lookup is harness.Lookup.
var lookup = harness.Lookup

// checkInstall checks what every install must have, whatever its keys.
func checkInstall(t *testing.T, objs objects) {
	t.Helper()
	ns := "jwe-webhook"
	objs.get(t, "Namespace", ns)
	objs.get(t, "ServiceAccount", "jwe-webhook")

	d := objs.get(t, "Deployment", "jwe-webhook")
	pod := lookup(d, "spec", "template", "spec")
	c := lookup(pod, "containers", 0)
	env := map[string]any{}
	for _, e := range lookup(c, "env").([]any) {
		env[lookup(e, "name").(string)] = lookup(e, "value")
	}
	for _, tt := range []struct {
		what string
		got  any
		want any
	}{
		{"namespace", lookup(d, "metadata", "namespace"), ns},
		{"replicas", lookup(d, "spec", "replicas"), float64(2)},
		{"pod runAsNonRoot", lookup(pod, "securityContext", "runAsNonRoot"), true},
		{"pod seccomp profile", lookup(pod, "securityContext", "seccompProfile", "type"), "RuntimeDefault"},
		{"readOnlyRootFilesystem", lookup(c, "securityContext", "readOnlyRootFilesystem"), true},
		{"allowPrivilegeEscalation", lookup(c, "securityContext", "allowPrivilegeEscalation"), false},
		{"dropped capabilities", fmt.Sprint(lookup(c, "securityContext", "capabilities", "drop")), "[ALL]"},
		{"liveness probe port", lookup(c, "livenessProbe", "httpGet", "port"), "metrics"},
		{"readiness probe", fmt.Sprint(lookup(c, "readinessProbe", "httpGet", "path"), " ", lookup(c, "readinessProbe", "httpGet", "port")), "/readyz metrics"},
		{"client CA", env["JWE_WEBHOOK_CLIENT_CA_FILE"] != nil, true},
		{"one key source", (env["JWE_WEBHOOK_KEY_FILE"] == nil) != (env["JWE_WEBHOOK_KEY_CONFIG"] == nil), true},
		{"topology spread", lookup(pod, "topologySpreadConstraints", 0) != nil, true},
		{"memory limit", lookup(c, "resources", "limits", "memory") != nil, true},
		{"requests", lookup(c, "resources", "requests", "cpu") != nil && lookup(c, "resources", "requests", "memory") != nil, true},
	} {
		if fmt.Sprint(tt.got) != fmt.Sprint(tt.want) {
			t.Errorf("Deployment %s: %v, want %v", tt.what, tt.got, tt.want)
		}
	}

	labels := lookup(d, "spec", "template", "metadata", "labels").(map[string]any)
	for _, kind := range []string{"PodDisruptionBudget", "Service", "NetworkPolicy"} {
		o := objs.get(t, kind, "jwe-webhook")
		sel, _ := lookup(o, "spec", "selector", "matchLabels").(map[string]any)
		if kind == "Service" {
			sel, _ = lookup(o, "spec", "selector").(map[string]any)
		} else if kind == "NetworkPolicy" {
			sel, _ = lookup(o, "spec", "podSelector", "matchLabels").(map[string]any)
		}
		if len(sel) == 0 {
			t.Errorf("%s selects no pods", kind)
		}
		for k, v := range sel {
			if labels[k] != v {
				t.Errorf("%s selects %s=%v, which the pods lack", kind, k, v)
			}
		}
	}
	svc := objs.get(t, "Service", "jwe-webhook")
	if fmt.Sprint(lookup(svc, "spec", "ports", 0, "port"), " ", lookup(svc, "spec", "ports", 0, "targetPort")) != "443 webhook" {
		t.Errorf("Service's first port is not 443 to the webhook port")
	}
	np := objs.get(t, "NetworkPolicy", "jwe-webhook")
	var ports []string
	for _, rule := range lookup(np, "spec", "ingress").([]any) {
		for _, p := range lookup(rule, "ports").([]any) {
			ports = append(ports, fmt.Sprint(lookup(p, "port")))
		}
	}
	slices.Sort(ports)
	if fmt.Sprint(lookup(np, "spec", "policyTypes")) != "[Ingress]" || fmt.Sprint(ports) != "[metrics webhook]" {
		t.Errorf("NetworkPolicy: types %v, ports %v; want Ingress to the metrics and webhook ports only", lookup(np, "spec", "policyTypes"), ports)
	}

	w := lookup(objs.get(t, "MutatingWebhookConfiguration", "jwe-webhook"), "webhooks", 0)
	raw, err := os.ReadFile(webhookManifest)
	if err != nil {
		t.Fatal(err)
	}
	var base map[string]any
	if err := yaml.Unmarshal(raw, &base); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		what string
		got  any
		want string
	}{
		{"failurePolicy", lookup(w, "failurePolicy"), "Fail"},
		{"sideEffects", lookup(w, "sideEffects"), "None"},
		{"timeoutSeconds", lookup(w, "timeoutSeconds"), "10"},
		{"admissionReviewVersions", lookup(w, "admissionReviewVersions"), "[v1]"},
		{"service", fmt.Sprint(lookup(w, "clientConfig", "service", "namespace"), "/", lookup(w, "clientConfig", "service", "name"),
			":", lookup(w, "clientConfig", "service", "port"), lookup(w, "clientConfig", "service", "path")), "jwe-webhook/jwe-webhook:443/mutate"},
		{"namespaceSelector", lookup(w, "namespaceSelector", "matchExpressions", 0), "map[key:kubernetes.io/metadata.name operator:NotIn values:[kube-system jwe-webhook]]"},
		// test/matchcondition proves the base's expressions; every install has them.
		{"matchConditions", lookup(w, "matchConditions"), fmt.Sprint(lookup(base, "webhooks", 0, "matchConditions"))},
	} {
		if fmt.Sprint(tt.got) != tt.want {
			t.Errorf("webhook %s: %v, want %s", tt.what, tt.got, tt.want)
		}
	}
}

// checkCertManager checks that cert-manager issues the secret the webhook
// serves from, injects its CA, and that the webhook trusts that CA for the
// client certificate cert-manager issues for the apiserver.
func checkCertManager(t *testing.T, objs objects) {
	t.Helper()
	mwc := objs.get(t, "MutatingWebhookConfiguration", "jwe-webhook")
	from, _ := lookup(mwc, "metadata", "annotations", "cert-manager.io/inject-ca-from").(string)
	ns, name, _ := strings.Cut(from, "/")
	serving := objs.get(t, "Certificate", name)
	if ns != "jwe-webhook" {
		t.Errorf("inject-ca-from %q, want a Certificate in jwe-webhook", from)
	}
	volumes := map[string]any{}
	for _, v := range lookup(objs.get(t, "Deployment", "jwe-webhook"), "spec", "template", "spec", "volumes").([]any) {
		volumes[lookup(v, "name").(string)] = v
	}
	if got, want := lookup(volumes["tls"], "secret", "secretName"), lookup(serving, "spec", "secretName"); got != want {
		t.Errorf("the webhook serves from Secret %v, cert-manager writes %v", got, want)
	}
	if !slices.Contains(lookup(serving, "spec", "dnsNames").([]any), any("jwe-webhook.jwe-webhook.svc")) {
		t.Error("the serving Certificate lacks jwe-webhook.jwe-webhook.svc")
	}
	client := objs.get(t, "Certificate", "jwe-webhook-apiserver-client")
	issuer := objs.get(t, "Issuer", lookup(client, "spec", "issuerRef", "name").(string))
	if got, want := lookup(volumes["client-ca"], "secret", "secretName"), lookup(issuer, "spec", "ca", "secretName"); got == nil || got != want {
		t.Errorf("the webhook trusts clients of Secret %v, the apiserver's certificate comes from %v", got, want)
	}
}

// runProgram runs a program and fails the test when it fails.
func runProgram(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.CommandContext(t.Context(), name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// checkKeyConfig parses the key configuration an overlay generates, if any,
// as the webhook does: an example that does not parse would keep the pods
// from becoming ready.
func checkKeyConfig(t *testing.T, objs objects) {
	t.Helper()
	for _, o := range objs {
		name, _ := lookup(o, "metadata", "name").(string)
		if o["kind"] != "ConfigMap" || !strings.HasPrefix(name, "jwe-webhook-keys") {
			continue
		}
		data, _ := lookup(o, "data", "keys.yaml").(string)
		if _, err := keyconfig.Parse([]byte(data)); err != nil {
			t.Errorf("ConfigMap %s: keys.yaml: %v", name, err)
		}
	}
}
