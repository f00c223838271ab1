// Package harness runs a real control plane for the end-to-end tests and the
// demo: etcd, kube-apiserver with encryption at rest, and the jwe-webhook binary
// registered as a mutating admission webhook, all on free loopback ports with
// throwaway certificates and keys in one directory.
package harness

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Timeouts for the components to become ready. Generous: a loaded 2-core CI
// machine starts kube-apiserver in 10 to 30 seconds.
const (
	etcdReadyTimeout      = time.Minute
	apiserverReadyTimeout = 3 * time.Minute
	webhookReadyTimeout   = time.Minute
	pollInterval          = 200 * time.Millisecond
)

// WebhookNamespace is the webhook's own namespace, which the
// MutatingWebhookConfiguration excludes.
const WebhookNamespace = "jwe-webhook"

// Config says what to start.
type Config struct {
	// Dir is the working directory, created if missing; everything goes below it.
	Dir  string
	Bins Binaries
	// WebhookManifest is manifests/base/mutatingwebhookconfiguration.yaml. The
	// harness points its clientConfig at the local webhook and applies it with
	// kubectl.
	WebhookManifest string
	// WebhookArgs are added to the webhook's command line.
	WebhookArgs []string
	// ExtraKeys are entries of a key configuration (the YAML format of
	// internal/kms/keyconfig, e.g. a gcpkms or vault entry) for keys beside
	// the local one. When set, the harness writes a key configuration naming
	// the local key and these, and the webhook gets --key-config instead of
	// --key-file.
	ExtraKeys []any
	// EncryptEnv is added to jwe-encrypt's environment, e.g. VAULT_ADDR.
	EncryptEnv []string
	// AuditPolicy, when set, is an audit.k8s.io/v1 Policy the apiserver logs
	// by, to Cluster.AuditLog.
	AuditPolicy []byte
	// Logf, if set, receives one line per step.
	Logf func(format string, args ...any)
}

// Cluster is a running control plane. Stop it when done.
type Cluster struct {
	cfg Config

	CA *CA
	// Key is the webhook's local JWE key; encrypt to Key.PublicFile.
	Key KeyPair
	// Kubeconfig is an admin (system:masters) kubeconfig for kubectl.
	Kubeconfig string
	// EtcdURL is etcd's client URL (plain HTTP on loopback).
	EtcdURL string
	// APIServerURL is kube-apiserver's https URL.
	APIServerURL string
	// WebhookURL is the webhook's https base URL.
	WebhookURL string
	// WebhookLog collects the output of every webhook run.
	WebhookLog string
	// MetricsURL is the webhook's plain-HTTP base URL for /metrics and probes.
	MetricsURL string
	// AuditLog is the apiserver's audit log (JSON lines) when
	// Config.AuditPolicy is set.
	AuditLog string
	// ClientCA issues the certificates the webhook accepts clients with; the
	// webhook allows only the name WebhookClientName.
	ClientCA *CA
	// APIServerClientCert is what the apiserver presents to the webhook.
	APIServerClientCert CertPair

	pkiDir, logDir  string
	webhookCert     CertPair
	apiserverClient tls.Certificate // APIServerClientCert, loaded
	keyConfig       string          // the webhook's --key-config file; empty for --key-file
	admin           *http.Client    // to the apiserver, as admin
	probeJWE        string          // a JWE for a key the webhook lacks

	etcd, apiserver, webhook *Process
}

// Start starts etcd, kube-apiserver and the webhook, and registers the
// webhook. On error everything started is stopped
// again and the error carries the tail of each log.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	c := &Cluster{cfg: cfg, pkiDir: filepath.Join(cfg.Dir, "pki"), logDir: filepath.Join(cfg.Dir, "logs")}
	if err := c.start(ctx); err != nil {
		err = fmt.Errorf("%w\n%s", err, c.Tails(40))
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context) error {
	for _, d := range []string{c.pkiDir, c.logDir, filepath.Join(c.cfg.Dir, "home")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	ports, err := freePorts(5)
	if err != nil {
		return err
	}
	c.EtcdURL = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	c.APIServerURL = fmt.Sprintf("https://127.0.0.1:%d", ports[2])
	c.WebhookURL = fmt.Sprintf("https://127.0.0.1:%d", ports[3])
	c.MetricsURL = fmt.Sprintf("http://127.0.0.1:%d", ports[4])

	c.cfg.Logf("generating CA, certificates and keys in %s", c.pkiDir)
	if err := c.writePKI(); err != nil {
		return err
	}
	c.cfg.Logf("starting etcd on %s", c.EtcdURL)
	if err := c.startEtcd(ctx, ports[1]); err != nil {
		return err
	}
	c.cfg.Logf("starting kube-apiserver on %s (encryption at rest: secretbox)", c.APIServerURL)
	if err := c.startAPIServer(ctx); err != nil {
		return err
	}
	if err := c.StartWebhook(ctx); err != nil {
		return err
	}
	c.cfg.Logf("registering the MutatingWebhookConfiguration from %s", c.cfg.WebhookManifest)
	return c.registerWebhook(ctx)
}

// Stop stops the webhook, kube-apiserver and etcd. It may be called more than
// once.
func (c *Cluster) Stop() {
	for _, p := range []*Process{c.webhook, c.apiserver, c.etcd} {
		if p != nil {
			p.Stop()
		}
	}
}

// Processes returns the processes started so far, the webhook's current run
// included.
func (c *Cluster) Processes() []*Process {
	var ps []*Process
	for _, p := range []*Process{c.etcd, c.apiserver, c.webhook} {
		if p != nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// Tails returns the last n lines of every process's log, each under a header.
func (c *Cluster) Tails(n int) string {
	var b strings.Builder
	for _, p := range c.Processes() {
		fmt.Fprintf(&b, "==> %s (last %d lines) <==\n%s\n", p.Log, n, p.Tail(n))
	}
	return b.String()
}

func (c *Cluster) writePKI() error {
	var err error
	if c.CA, err = NewCA(c.pkiDir); err != nil {
		return err
	}
	if c.webhookCert, err = c.CA.ServingCert(c.pkiDir, "webhook"); err != nil {
		return err
	}
	if err := c.writeClientPKI(); err != nil {
		return err
	}
	if c.Key, err = NewRSAKeyPair(c.pkiDir, "jwe-key"); err != nil {
		return err
	}
	if len(c.cfg.ExtraKeys) > 0 {
		c.keyConfig = filepath.Join(c.pkiDir, "keys.yaml")
		local := map[string]any{"provider": "local", "local": map[string]any{"file": c.Key.PrivateFile}}
		return writeYAML(c.keyConfig, map[string]any{"keys": append([]any{local}, c.cfg.ExtraKeys...)})
	}
	return nil
}

func (c *Cluster) startEtcd(ctx context.Context, peerPort int) error {
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	p, err := StartProcess(c.logDir, "etcd", c.cfg.Bins.Etcd,
		"--name=e2e",
		"--data-dir="+filepath.Join(c.cfg.Dir, "etcd-data"),
		"--listen-client-urls="+c.EtcdURL,
		"--advertise-client-urls="+c.EtcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=e2e="+peerURL,
		"--unsafe-no-fsync", // a throwaway cluster: speed over durability
		"--log-level=warn",
	)
	if err != nil {
		return err
	}
	c.etcd = p
	return waitFor(ctx, etcdReadyTimeout, "etcd /health", p.Exited(), func(ctx context.Context) error {
		body, err := httpGet(ctx, http.DefaultClient, c.EtcdURL+"/health")
		if err == nil && !strings.Contains(body, `"health":"true"`) {
			err = fmt.Errorf("unhealthy: %s", body)
		}
		return err
	})
}

func (c *Cluster) startAPIServer(ctx context.Context) error {
	serving, err := c.CA.ServingCert(c.pkiDir, "apiserver")
	if err != nil {
		return err
	}
	admin, err := c.CA.ClientCert(c.pkiDir, "admin", "e2e-admin", "system:masters")
	if err != nil {
		return err
	}
	sa, err := NewRSAKeyPair(c.pkiDir, "service-account")
	if err != nil {
		return err
	}
	encConfig, err := c.writeEncryptionConfig()
	if err != nil {
		return err
	}
	admissionConfig, err := c.writeAdmissionConfig()
	if err != nil {
		return err
	}
	if err := c.writeKubeconfig(admin); err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(admin.CertFile, admin.KeyFile)
	if err != nil {
		return fmt.Errorf("load admin certificate: %w", err)
	}
	c.admin = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs:      c.CA.Pool(),
		Certificates: []tls.Certificate{cert},
	}}}

	auditPolicy, err := c.writeAuditPolicy()
	if err != nil {
		return err
	}

	_, port, _ := net.SplitHostPort(strings.TrimPrefix(c.APIServerURL, "https://"))
	p, err := StartProcess(c.logDir, "kube-apiserver", c.cfg.Bins.KubeAPIServer,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+port,
		"--cert-dir="+filepath.Join(c.cfg.Dir, "apiserver-certs"),
		"--tls-cert-file="+serving.CertFile,
		"--tls-private-key-file="+serving.KeyFile,
		"--client-ca-file="+c.CA.CertFile,
		"--authorization-mode=RBAC",
		"--etcd-servers="+c.EtcdURL,
		"--encryption-provider-config="+encConfig,
		"--admission-control-config-file="+admissionConfig,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+sa.PublicFile,
		"--service-account-signing-key-file="+sa.PrivateFile,
		"--service-cluster-ip-range=10.96.0.0/16",
		"--endpoint-reconciler-type=none",
		"--profiling=false",
		"--audit-policy-file="+auditPolicy, // empty (no audit log) without Config.AuditPolicy
		"--audit-log-path="+c.AuditLog,
		"--audit-log-format=json",
		"--v=1",
	)
	if err != nil {
		return err
	}
	c.apiserver = p
	if err := waitFor(ctx, apiserverReadyTimeout, "kube-apiserver /readyz", p.Exited(), func(ctx context.Context) error {
		_, err := httpGet(ctx, c.admin, c.APIServerURL+"/readyz")
		return err
	}); err != nil {
		return err
	}
	// The system namespaces are created by a controller after /readyz turns
	// green; the tests use kube-system.
	return waitFor(ctx, apiserverReadyTimeout, "namespace kube-system", p.Exited(), func(ctx context.Context) error {
		_, err := httpGet(ctx, c.admin, c.APIServerURL+"/api/v1/namespaces/kube-system")
		return err
	})
}

// writeAuditPolicy writes Config.AuditPolicy for the apiserver, sets
// AuditLog and returns the policy's path; "" without a policy.
func (c *Cluster) writeAuditPolicy() (string, error) {
	if len(c.cfg.AuditPolicy) == 0 {
		return "", nil
	}
	policy := filepath.Join(c.pkiDir, "audit-policy.yaml")
	if err := os.WriteFile(policy, c.cfg.AuditPolicy, 0o600); err != nil {
		return "", err
	}
	c.AuditLog = filepath.Join(c.logDir, "audit.log")
	return policy, nil
}

// writeEncryptionConfig writes an EncryptionConfiguration that stores Secrets
// with secretbox under a random key, so etcd holds "k8s:enc:secretbox:v1:key1:…".
func (c *Cluster) writeEncryptionConfig() (string, error) {
	key := make([]byte, 32)
	rand.Read(key) // never fails (Go 1.24+)
	config := map[string]any{
		"apiVersion": "apiserver.config.k8s.io/v1",
		"kind":       "EncryptionConfiguration",
		"resources": []any{map[string]any{
			"resources": []string{"secrets"},
			"providers": []any{
				map[string]any{"secretbox": map[string]any{"keys": []any{
					map[string]any{"name": "key1", "secret": base64.StdEncoding.EncodeToString(key)},
				}}},
				map[string]any{"identity": map[string]any{}},
			},
		}},
	}
	path := filepath.Join(c.pkiDir, "encryption-config.yaml")
	return path, writeYAML(path, config)
}

func (c *Cluster) writeKubeconfig(admin CertPair) error {
	c.Kubeconfig = filepath.Join(c.cfg.Dir, "kubeconfig")
	return writeYAML(c.Kubeconfig, map[string]any{
		"apiVersion": "v1",
		"kind":       "Config",
		"clusters": []any{map[string]any{"name": "e2e", "cluster": map[string]any{
			"server":                c.APIServerURL,
			"certificate-authority": c.CA.CertFile,
		}}},
		"users": []any{map[string]any{"name": "admin", "user": map[string]any{
			"client-certificate": admin.CertFile,
			"client-key":         admin.KeyFile,
		}}},
		"contexts": []any{map[string]any{"name": "e2e", "context": map[string]any{
			"cluster": "e2e", "user": "admin", "namespace": "default",
		}}},
		"current-context": "e2e",
	})
}

// StartWebhook starts the webhook binary and waits for its /readyz. Stop it
// with StopWebhook. extraArgs come last on its command line, after
// Config.WebhookArgs, so they win.
func (c *Cluster) StartWebhook(ctx context.Context, extraArgs ...string) error {
	if c.WebhookLog == "" {
		c.WebhookLog = filepath.Join(c.logDir, "webhook.log")
	}
	addr := strings.TrimPrefix(c.WebhookURL, "https://")
	keys := []string{"--key-file", c.Key.PrivateFile}
	if c.keyConfig != "" {
		keys = []string{"--key-config", c.keyConfig}
	}
	args := append([]string{
		"--listen", addr,
		"--tls-cert-file", c.webhookCert.CertFile,
		"--tls-key-file", c.webhookCert.KeyFile,
		"--metrics-listen", strings.TrimPrefix(c.MetricsURL, "http://"),
	}, keys...)
	args = append(args, c.clientAuthArgs()...)
	args = append(args, c.cfg.WebhookArgs...)
	args = append(args, extraArgs...)
	c.cfg.Logf("starting the webhook on %s with %s", addr, keySources(args))
	p, err := StartProcess(c.logDir, "webhook", c.cfg.Bins.Webhook, args...)
	if err != nil {
		return err
	}
	c.webhook = p
	return waitFor(ctx, webhookReadyTimeout, "webhook /readyz", p.Exited(), func(ctx context.Context) error {
		_, err := httpGet(ctx, c.webhookClient(), c.WebhookURL+"/readyz")
		return err
	})
}

// keySources says where the webhook reads its keys from with args, as its
// flag parsing does: every --key-file, and the last --key-config (a later
// one overrides an earlier).
func keySources(args []string) string {
	var files []string
	config := ""
	for i := 0; i < len(args); i++ {
		if !strings.HasPrefix(args[i], "-") {
			continue
		}
		name, value, inline := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if name != "key-file" && name != "key-config" {
			continue
		}
		if !inline && i+1 < len(args) {
			i++
			value = args[i]
		}
		if name == "key-file" {
			files = append(files, "--key-file "+value)
		} else {
			config = "--key-config " + value
		}
	}
	if config != "" {
		files = append(files, config)
	}
	return strings.Join(files, " ")
}

// webhookClient is an HTTPS client that trusts the webhook's serving
// certificate and presents the apiserver's client certificate.
func (c *Cluster) webhookClient() *http.Client {
	return c.WebhookClient(c.apiserverClient)
}

// StopWebhook stops the webhook; the apiserver then fails to call it.
func (c *Cluster) StopWebhook() {
	if c.webhook != nil {
		c.webhook.Stop()
	}
}

// KillWebhook kills the webhook with SIGKILL, as a crash or an OOM kill
// would: requests in flight get no answer. Start it again with StartWebhook.
func (c *Cluster) KillWebhook() {
	if c.webhook != nil {
		c.webhook.Kill()
	}
}

// WebhookHealthy returns nil when the webhook's current run has not exited
// and answers /healthz.
func (c *Cluster) WebhookHealthy(ctx context.Context) error {
	select {
	case <-c.webhook.Exited():
		return c.webhook.ExitError()
	default:
	}
	_, err := httpGet(ctx, c.webhookClient(), c.WebhookURL+"/healthz")
	return err
}

// WebhookCert is the webhook's serving certificate and key on disk, which
// the webhook reloads when they change.
func (c *Cluster) WebhookCert() CertPair { return c.webhookCert }

// registerWebhook applies the MutatingWebhookConfiguration from manifests/ with
// its clientConfig pointed at the local webhook, creates the webhook's
// namespace, and waits until the apiserver really calls the webhook.
func (c *Cluster) registerWebhook(ctx context.Context) error {
	raw, err := os.ReadFile(c.cfg.WebhookManifest)
	if err != nil {
		return fmt.Errorf("read webhook manifest: %w", err)
	}
	var config map[string]any
	if err := yaml.Unmarshal(raw, &config); err != nil {
		return fmt.Errorf("parse %s: %w", c.cfg.WebhookManifest, err)
	}
	webhooks, _ := config["webhooks"].([]any)
	if len(webhooks) == 0 {
		return fmt.Errorf("%s: no webhooks", c.cfg.WebhookManifest)
	}
	for _, w := range webhooks {
		w.(map[string]any)["clientConfig"] = map[string]any{
			"url":      c.WebhookURL + "/mutate",
			"caBundle": base64.StdEncoding.EncodeToString(c.CA.PEM),
		}
	}
	path := filepath.Join(c.cfg.Dir, "mutatingwebhookconfiguration.yaml")
	if err := writeYAML(path, config); err != nil {
		return err
	}
	if _, err := c.Kubectl(ctx, nil, "apply", "-f", path); err != nil {
		return err
	}
	if _, err := c.Kubectl(ctx, nil, "create", "namespace", WebhookNamespace); err != nil {
		return err
	}
	probe, err := NewRSAKeyPair(c.pkiDir, "probe-key")
	if err != nil {
		return err
	}
	if c.probeJWE, err = c.Encrypt(ctx, probe.PublicFile, []byte("probe"), Scope{}); err != nil {
		return err
	}
	return c.WaitWebhookCalled(ctx)
}

// WaitWebhookCalled waits until the apiserver calls the webhook: a server-side
// dry run of a Secret holding a JWE for a key the webhook lacks must be denied
// by the webhook. Registration and restarts take effect only after this.
func (c *Cluster) WaitWebhookCalled(ctx context.Context) error {
	return waitFor(ctx, webhookReadyTimeout, "the apiserver to call the webhook", c.webhook.Exited(), func(ctx context.Context) error {
		err := c.ProbeWebhook(ctx)
		if errors.Is(err, ErrWebhookDenied) {
			return nil
		}
		if err == nil {
			return errors.New("the probe Secret was admitted: the webhook is not called yet")
		}
		return err
	})
}

// ErrWebhookDenied is what ProbeWebhook returns when the webhook answered.
var ErrWebhookDenied = errors.New("denied by the webhook")

// ProbeWebhook dry-runs the creation of a Secret holding a JWE for an unknown
// key in namespace default. It returns ErrWebhookDenied when the webhook
// answered and denied it (the healthy case), nil when the Secret was admitted
// (the webhook was not called), and another error otherwise, e.g. when the
// apiserver failed to call the webhook.
func (c *Cluster) ProbeWebhook(ctx context.Context) error {
	secret := fmt.Sprintf(`{"apiVersion":"v1","kind":"Secret","metadata":{"generateName":"probe-"},"data":{"probe":%q}}`,
		base64.StdEncoding.EncodeToString([]byte(c.probeJWE)))
	code, body, err := httpDo(ctx, c.admin, http.MethodPost,
		c.APIServerURL+"/api/v1/namespaces/default/secrets?dryRun=All", secret)
	switch {
	case err != nil:
		return err
	case code == http.StatusCreated:
		return nil
	case strings.Contains(body, "denied the request"):
		return ErrWebhookDenied
	default:
		return fmt.Errorf("probe: HTTP %d: %s", code, body)
	}
}

// waitFor calls check every pollInterval until it returns nil, the timeout
// passes, or exited is closed (a nil channel never is).
func waitFor(ctx context.Context, timeout time.Duration, what string, exited <-chan struct{}, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s (%v): %w", what, timeout, err)
		case <-exited:
			return fmt.Errorf("wait for %s: the process exited", what)
		case <-tick.C:
		}
	}
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func writeYAML(path string, v any) error {
	data, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Errorf("marshal %s: %w", filepath.Base(path), err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}
