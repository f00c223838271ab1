package harness

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// WebhookClientName is the common name of the kube-apiserver's client
// certificate, the one name the webhook allows (--client-allowed-names).
const WebhookClientName = "kube-apiserver"

// writeClientPKI makes the CA the webhook trusts for clients, apart from the
// cluster's, and the kube-apiserver's client certificate it issues.
func (c *Cluster) writeClientPKI() error {
	dir := filepath.Join(c.pkiDir, "webhook-clients")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	var err error
	if c.ClientCA, err = NewCA(dir); err != nil {
		return err
	}
	if c.APIServerClientCert, err = c.ClientCA.ClientCert(dir, "apiserver", WebhookClientName); err != nil {
		return err
	}
	c.apiserverClient, err = c.APIServerClientCert.Load()
	return err
}

// writeAdmissionConfig writes the AdmissionConfiguration for
// kube-apiserver's --admission-control-config-file: the MutatingAdmissionWebhook
// plugin reads a kubeconfig whose user for the webhook's host:port presents
// APIServerClientCert. It returns the file's path.
func (c *Cluster) writeAdmissionConfig() (string, error) {
	kubeconfig := filepath.Join(c.pkiDir, "webhook-kubeconfig.yaml")
	if err := writeYAML(kubeconfig, map[string]any{
		"apiVersion": "v1",
		"kind":       "Config",
		"users": []any{map[string]any{
			"name": strings.TrimPrefix(c.WebhookURL, "https://"),
			"user": map[string]any{
				"client-certificate": c.APIServerClientCert.CertFile,
				"client-key":         c.APIServerClientCert.KeyFile,
			},
		}},
	}); err != nil {
		return "", err
	}
	path := filepath.Join(c.pkiDir, "admission-configuration.yaml")
	return path, writeYAML(path, map[string]any{
		"apiVersion": "apiserver.config.k8s.io/v1",
		"kind":       "AdmissionConfiguration",
		"plugins": []any{map[string]any{
			"name": "MutatingAdmissionWebhook",
			"configuration": map[string]any{
				"apiVersion":     "apiserver.config.k8s.io/v1",
				"kind":           "WebhookAdmissionConfiguration",
				"kubeConfigFile": kubeconfig,
			},
		}},
	})
}

// clientAuthArgs make the webhook accept only the apiserver's certificate.
func (c *Cluster) clientAuthArgs() []string {
	return []string{"--client-ca-file", c.ClientCA.CertFile, "--client-allowed-names", WebhookClientName}
}

// WebhookClient returns an HTTPS client that trusts the webhook's serving
// certificate and presents certs, none when empty.
func (c *Cluster) WebhookClient(certs ...tls.Certificate) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs:      c.CA.Pool(),
		Certificates: certs,
	}}}
}

// Load reads the pair as a tls.Certificate.
func (p CertPair) Load() (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
	if err != nil {
		return cert, fmt.Errorf("load certificate %s: %w", filepath.Base(p.CertFile), err)
	}
	return cert, nil
}
