// Package certs_test runs make-certs.sh and checks what it writes with the
// Go crypto/x509 verifier, as the kube-apiserver and the webhook will.
package certs_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/jwe-webhook/jwe-webhook/internal/testkit"
)

// makeCerts runs the script into a new directory with args and returns it.
func makeCerts(t *testing.T, args ...string) string {
	t.Helper()
	for _, tool := range []string{"bash", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			testkit.Require(t, tool+" is not installed")
		}
	}
	out := filepath.Join(t.TempDir(), "pki")
	cmd := exec.Command("bash", append([]string{"make-certs.sh"}, append(args, out)...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make-certs.sh %q: %v\n%s", args, err, b)
	}
	return out
}

func readCerts(t *testing.T, data []byte) []*x509.Certificate {
	t.Helper()
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			return certs
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
}

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readYAML decodes dir/name into v.
func readYAML(t *testing.T, dir, name string, v any) {
	t.Helper()
	if err := yaml.Unmarshal(readFile(t, dir, name), v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// verify checks that the pair name.crt/name.key matches and chains to roots
// for usage, and returns the leaf.
func verify(t *testing.T, dir, name string, roots *x509.CertPool, usage x509.ExtKeyUsage) *x509.Certificate {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		t.Errorf("%s does not chain to the CA for %v: %v", name, usage, err)
	}
	return pair.Leaf
}

func pool(certs []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

type install struct {
	tlsSecret struct {
		Type string            `yaml:"type"`
		Data map[string]string `yaml:"data"`
	}
	clientCA struct {
		Data map[string]string `yaml:"data"`
	}
	caBundle struct {
		Webhooks []struct {
			Name         string `yaml:"name"`
			ClientConfig struct {
				CABundle string `yaml:"caBundle"`
			} `yaml:"clientConfig"`
		} `yaml:"webhooks"`
	}
	kubeconfig struct {
		Users []struct {
			Name string `yaml:"name"`
			User struct {
				ClientCertificate string `yaml:"client-certificate"`
			} `yaml:"user"`
		} `yaml:"users"`
	}
}

func readInstall(t *testing.T, dir string) *install {
	t.Helper()
	var in install
	readYAML(t, dir, "tls-secret.yaml", &in.tlsSecret)
	readYAML(t, dir, "client-ca-configmap.yaml", &in.clientCA)
	readYAML(t, dir, "cabundle-patch.yaml", &in.caBundle)
	readYAML(t, dir, "webhook-kubeconfig.yaml", &in.kubeconfig)
	return &in
}

func TestMakeCerts(t *testing.T) {
	t.Parallel()
	dir := makeCerts(t, "--service", "jwe", "--namespace", "secure", "--client-name", "apiserver-a", "--node-dir", "/srv/jwe")
	cas := readCerts(t, readFile(t, dir, "ca.crt"))
	if len(cas) != 1 || !cas[0].IsCA {
		t.Fatalf("ca.crt holds %d certificates, want one CA", len(cas))
	}
	roots := pool(cas)

	serving := verify(t, dir, "tls", roots, x509.ExtKeyUsageServerAuth)
	if want := []string{"jwe.secure.svc", "jwe.secure.svc.cluster.local"}; !slices.Equal(serving.DNSNames, want) {
		t.Errorf("serving certificate DNS SANs %q, want %q", serving.DNSNames, want)
	}
	if err := serving.VerifyHostname("jwe.secure.svc"); err != nil {
		t.Error(err)
	}
	if slices.Contains(serving.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		t.Error("the serving certificate may authenticate a client")
	}
	client := verify(t, dir, "apiserver-client", roots, x509.ExtKeyUsageClientAuth)
	if client.Subject.CommonName != "apiserver-a" {
		t.Errorf("client certificate CN %q, want apiserver-a", client.Subject.CommonName)
	}
	if slices.Contains(client.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		t.Error("the client certificate may serve")
	}

	in := readInstall(t, dir)
	if in.tlsSecret.Type != "kubernetes.io/tls" {
		t.Errorf("TLS Secret type %q", in.tlsSecret.Type)
	}
	for key, file := range map[string]string{"tls.crt": "tls.crt", "tls.key": "tls.key", "ca.crt": "ca.crt"} {
		if got, _ := base64.StdEncoding.DecodeString(in.tlsSecret.Data[key]); string(got) != string(readFile(t, dir, file)) {
			t.Errorf("TLS Secret %s is not %s", key, file)
		}
	}
	if in.clientCA.Data["ca.crt"] != string(readFile(t, dir, "ca.crt")) {
		t.Error("client CA ConfigMap does not hold ca.crt")
	}
	if len(in.caBundle.Webhooks) != 1 || in.caBundle.Webhooks[0].Name != "secrets.jwe-webhook.io" {
		t.Fatalf("caBundle patch webhooks %+v, want secrets.jwe-webhook.io", in.caBundle.Webhooks)
	}
	bundle, _ := base64.StdEncoding.DecodeString(in.caBundle.Webhooks[0].ClientConfig.CABundle)
	if _, err := serving.Verify(x509.VerifyOptions{Roots: pool(readCerts(t, bundle)), DNSName: "jwe.secure.svc"}); err != nil {
		t.Errorf("the apiserver would not trust the serving certificate with caBundle: %v", err)
	}
	if u := in.kubeconfig.Users; len(u) != 1 || u[0].Name != "jwe.secure.svc" || u[0].User.ClientCertificate != "/srv/jwe/apiserver-client.crt" {
		t.Errorf("webhook kubeconfig users %+v, want jwe.secure.svc with /srv/jwe/apiserver-client.crt", u)
	}
	if mode := statMode(t, dir, "tls.key"); mode&0o077 != 0 {
		t.Errorf("tls.key mode %v, want no access for group and others", mode)
	}
}

// TestMakeCertsRotation renews the leaves with the same CA, then starts a
// CA rotation with the old CA still trusted.
func TestMakeCertsRotation(t *testing.T) {
	t.Parallel()
	first := makeCerts(t)
	renewed := makeCerts(t, "--ca-dir", first)
	if string(readFile(t, renewed, "ca.crt")) != string(readFile(t, first, "ca.crt")) {
		t.Fatal("--ca-dir made a new CA")
	}
	verify(t, renewed, "tls", pool(readCerts(t, readFile(t, first, "ca.crt"))), x509.ExtKeyUsageServerAuth)
	if string(readFile(t, renewed, "tls.crt")) == string(readFile(t, first, "tls.crt")) {
		t.Error("--ca-dir did not issue a new serving certificate")
	}

	rotated := makeCerts(t, "--also-trust", filepath.Join(first, "ca.crt"))
	// Made within the same second: the subjects still differ, so that logs
	// ("client CA bundle loaded" lists them) tell the two apart.
	oldCA, newCA := readCerts(t, readFile(t, first, "ca.crt"))[0], readCerts(t, readFile(t, rotated, "ca.crt"))[0]
	if oldCA.Subject.String() == newCA.Subject.String() {
		t.Errorf("old and new CA have the same subject %q", newCA.Subject)
	}
	if !strings.HasPrefix(newCA.Subject.CommonName, "jwe-webhook CA ") {
		t.Errorf("CA subject %q", newCA.Subject)
	}
	in := readInstall(t, rotated)
	bundle, _ := base64.StdEncoding.DecodeString(in.caBundle.Webhooks[0].ClientConfig.CABundle)
	for name, data := range map[string][]byte{"caBundle": bundle, "client CA ConfigMap": []byte(in.clientCA.Data["ca.crt"])} {
		roots := pool(readCerts(t, data))
		// Old and new certificates are trusted alike during the rotation.
		verify(t, first, "tls", roots, x509.ExtKeyUsageServerAuth)
		verify(t, rotated, "tls", roots, x509.ExtKeyUsageServerAuth)
		verify(t, first, "apiserver-client", roots, x509.ExtKeyUsageClientAuth)
		if n := len(readCerts(t, data)); n != 2 {
			t.Errorf("%s holds %d CAs, want the new and the old", name, n)
		}
	}
}

func statMode(t *testing.T, dir, name string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}
