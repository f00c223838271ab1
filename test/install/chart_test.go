package install_test

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/lint/support"
)

// TestChartLint lints the chart strictly (warnings fail) with each values
// file under ci/, as `helm lint --strict -f FILE` does.
func TestChartLint(t *testing.T) {
	for _, file := range ciValues(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			lint := action.NewLint()
			lint.Strict = true
			lint.Namespace = namespace
			lint.KubeVersion = kubeVersion(t)
			res := lint.Run([]string{chartDir}, chartValues(t, []string{file}))
			for _, err := range res.Errors {
				t.Errorf("lint: %v", err)
			}
			for _, m := range res.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("lint: %v", m)
				} else {
					t.Logf("lint: %v", m)
				}
			}
			if res.TotalChartsLinted != 1 {
				t.Errorf("linted %d charts, want 1", res.TotalChartsLinted)
			}
		})
	}
}

// TestChartRefusesBadValues: values the webhook cannot run with fail the
// render with a message that says what to set.
func TestChartRefusesBadValues(t *testing.T) {
	local := "keys.localKey.secretName=jwe-webhook-key"
	for _, tt := range []struct {
		name string
		set  []string
		want string
	}{
		{"no keys", nil, "set keys.localKey.secretName"},
		{"two key sources", []string{local, "keys.config.keys[0].provider=vault"}, "not both"},
		{"vault token without a key configuration", []string{local, "keys.vaultToken.enabled=true"}, "needs keys.config"},
		{"unknown certificate source", []string{local, "certificates.source=self"}, "/certificates/source"},
		{"unknown value", []string{local, "replicas=3"}, "replicas"},
		{"failure policy", []string{local, "webhook.failurePolicy=Never"}, "failurePolicy"},
		{"extra variable without a name", []string{local, "extraEnv[0].value=x"}, "extraEnv"},
		{"no allowed client names", []string{local, "clientAuth.allowedNames={}"}, "allowedNames"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := renderChart(t, nil, tt.set...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("render with %v: %v, want an error mentioning %q", tt.set, err, tt.want)
			}
		})
	}
}

// TestChartRender renders every values file under ci/ and checks what each
// install needs whatever its keys; then the specifics of some.
func TestChartRender(t *testing.T) {
	for _, file := range ciValues(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			objs, notes := mustRenderChart(t, []string{file})
			for _, o := range objs {
				if ns := lookup(o, "metadata", "namespace"); ns != nil && ns != namespace {
					t.Errorf("%s %s in namespace %v, want %s", o["kind"], lookup(o, "metadata", "name"), ns, namespace)
				}
				if lookup(o, "metadata", "labels", "app.kubernetes.io/managed-by") != "Helm" {
					t.Errorf("%s %s lacks the chart's labels", o["kind"], lookup(o, "metadata", "name"))
				}
			}
			d := objs.get(t, "Deployment", releaseName)
			pod := lookup(d, "spec", "template", "spec")
			if lookup(pod, "securityContext", "runAsNonRoot") != true || lookup(pod, "containers", 0, "securityContext", "readOnlyRootFilesystem") != true {
				t.Error("the pod is not restricted")
			}
			for _, kind := range []string{"Service", "PodDisruptionBudget", "NetworkPolicy", "ServiceAccount", "MutatingWebhookConfiguration"} {
				objs.get(t, kind, releaseName)
			}
			if !strings.Contains(notes, "rollout status deployment/"+releaseName) {
				t.Errorf("NOTES lack the rollout command:\n%s", notes)
			}
		})
	}

	t.Run("generated certificates", func(t *testing.T) {
		objs, _ := mustRenderChart(t, []string{filepath.Join(chartDir, "ci", "managed-cluster-values.yaml")})
		checkGeneratedCerts(t, objs)
		env := containerEnv(objs.get(t, "Deployment", releaseName))
		if _, ok := env["JWE_WEBHOOK_CLIENT_CA_FILE"]; ok {
			t.Error("clientAuth.enabled=false still sets a client CA")
		}
		if objs.find("ConfigMap", releaseName+"-dashboard") == nil {
			t.Error("no dashboard ConfigMap")
		}
	})
}

// checkGeneratedCerts checks certificates.source=generate: the caBundle
// verifies the serving certificate for the Service's name, and the
// apiserver's client certificate comes from the CA the webhook trusts.
func checkGeneratedCerts(t *testing.T, objs objects) {
	t.Helper()
	bundle, _ := lookup(objs.get(t, "MutatingWebhookConfiguration", releaseName), "webhooks", 0, "clientConfig", "caBundle").(string)
	roots := x509.NewCertPool()
	if pemCA, err := base64.StdEncoding.DecodeString(bundle); err != nil || !roots.AppendCertsFromPEM(pemCA) {
		t.Fatalf("caBundle is not a base64 PEM certificate: %v", err)
	}
	for _, tt := range []struct {
		secret, name string
		usage        x509.ExtKeyUsage
	}{
		{releaseName + "-tls", releaseName + "." + namespace + ".svc", x509.ExtKeyUsageServerAuth},
		{releaseName + "-apiserver-client", "", x509.ExtKeyUsageClientAuth},
	} {
		cert := secretCert(t, objs.get(t, "Secret", tt.secret))
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: tt.name, Roots: roots, KeyUsages: []x509.ExtKeyUsage{tt.usage}}); err != nil {
			t.Errorf("Secret %s: %v", tt.secret, err)
		}
	}
	if cn := secretCert(t, objs.get(t, "Secret", releaseName+"-apiserver-client")).Subject.CommonName; cn != "kube-apiserver" {
		t.Errorf("the apiserver's client certificate is for %q, want kube-apiserver", cn)
	}
}

// secretCert parses tls.crt of a rendered Secret.
func secretCert(t *testing.T, secret object) *x509.Certificate {
	t.Helper()
	raw, _ := lookup(secret, "data", "tls.crt").(string)
	pemCert, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemCert)
	if block == nil {
		t.Fatalf("Secret %v: tls.crt holds no PEM", lookup(secret, "metadata", "name"))
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// containerEnv returns the webhook container's variables by name.
func containerEnv(d object) map[string]any {
	env := map[string]any{}
	for _, e := range lookup(d, "spec", "template", "spec", "containers", 0, "env").([]any) {
		env[lookup(e, "name").(string)] = lookup(e, "value")
	}
	return env
}

// TestChartApply applies each rendering to the real apiserver with a
// server-side apply, dry run and strict field validation, as the e2e suite
// does with the kustomize overlays. cert-manager's and prometheus-operator's
// objects are validated against stand-in CRDs installed for the purpose. The
// objects get another name than the suite's own webhook configuration
// (jwe-webhook), which a server-side apply would merge with.
func TestChartApply(t *testing.T) {
	installStandInCRDs(t)
	for _, file := range ciValues(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			objs, _ := mustRenderChart(t, []string{file}, "fullnameOverride=chart-apply-test")
			applyDryRun(t, writeObjects(t, objs), "--server-side", "--force-conflicts", "--field-manager=install-test")
		})
	}
}

// installStandInCRDs installs the stand-in CRDs once per run.
func installStandInCRDs(t *testing.T) {
	t.Helper()
	c := needCluster(t)
	for _, f := range []string{"../e2e/testdata/cert-manager-crds.yaml", "testdata/monitoring-crds.yaml"} {
		if _, err := c.Kubectl(t.Context(), nil, "apply", "-f", f); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Kubectl(t.Context(), nil, "wait", "--for=condition=Established", "--timeout=60s",
		"crd/issuers.cert-manager.io", "crd/certificates.cert-manager.io",
		"crd/servicemonitors.monitoring.coreos.com", "crd/prometheusrules.monitoring.coreos.com"); err != nil {
		t.Fatal(err)
	}
}

// applyDryRun applies the file with a server-side dry run, strict
// validation and flags, failing the test when the apiserver refuses
// anything.
func applyDryRun(t *testing.T, path string, flags ...string) {
	t.Helper()
	args := append([]string{"apply", "--dry-run=server", "--validate=strict", "-f", path}, flags...)
	out, err := needCluster(t).Kubectl(t.Context(), nil, args...)
	if err != nil {
		t.Errorf("the apiserver refuses the install:\n%v", err)
	}
	t.Logf("%s", out)
}
