package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// target is a webhook to send load to.
type target struct {
	url     string
	client  *http.Client
	timeout time.Duration
}

// newTarget returns a target at addr whose certificate verifies with roots,
// with a connection kept alive for each of concurrency workers.
func newTarget(addr string, roots *x509.CertPool, c config) *target {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: c.concurrency,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &target{url: "https://" + addr + "/mutate", client: &http.Client{Transport: tr, Timeout: c.timeout}, timeout: c.timeout}
}

// dialTarget is the -addr webhook, verified with the certificates in caFile.
func dialTarget(addr, caFile string, c config) (*target, error) {
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificate", caFile)
	}
	return newTarget(addr, roots, c), nil
}

// isLoopback reports whether hostport names a loopback address.
func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// openWebhook prepares -start: the binary (built when missing), the log
// file and a self-signed serving certificate for 127.0.0.1.
func (r *runner) openWebhook(ctx context.Context) error {
	if _, err := os.Stat(r.cfg.webhook); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(r.stderr, "load: building %s\n", r.cfg.webhook)
		build := exec.CommandContext(ctx, "go", "build", "-o", r.cfg.webhook, "./cmd/webhook")
		build.Stdout, build.Stderr = r.stderr, r.stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build %s (run from the repository root): %w", r.cfg.webhook, err)
		}
	}
	var err error
	if r.cfg.logFile != "" {
		r.log, err = os.OpenFile(r.cfg.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	} else {
		r.log, err = os.CreateTemp("", "jwe-webhook-load-*.log")
	}
	if err != nil {
		return err
	}
	r.logPath = r.log.Name()
	return writeServingCert(r.dir)
}

// writeServingCert writes a self-signed ECDSA certificate for 127.0.0.1 and
// its key to dir/tls.crt and dir/tls.key.
func writeServingCert(dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "jwe-webhook load"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
}

// webhook is a running webhook process.
type webhook struct {
	*target
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
	err    error         // its exit status, once exited is closed
}

// startWebhook starts the binary on a free loopback port with keyArgs and
// waits until it answers over TLS.
func (r *runner) startWebhook(ctx context.Context, keyArgs []string) (*webhook, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := append([]string{
		"--listen", addr,
		"--tls-cert-file", filepath.Join(r.dir, "tls.crt"),
		"--tls-key-file", filepath.Join(r.dir, "tls.key"),
		"--log-level", r.cfg.logLevel,
		"--shutdown-timeout", "5s",
	}, keyArgs...)
	args = append(args, r.cfg.webhookArgs...)
	fmt.Fprintf(r.log, "# load: %s %q\n", r.cfg.webhook, args)
	cmd := exec.Command(r.cfg.webhook, args...)
	cmd.Stdout, cmd.Stderr = r.log, r.log
	cmd.SysProcAttr = dieWithParent()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	w := &webhook{cmd: cmd, exited: make(chan struct{})}
	go func() {
		w.err = cmd.Wait()
		close(w.exited)
	}()

	cert, err := os.ReadFile(filepath.Join(r.dir, "tls.crt"))
	if err != nil {
		w.stop()
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(cert)
	w.target = newTarget(addr, roots, r.cfg)
	if err := w.waitServing(ctx, 30*time.Second); err != nil {
		w.stop()
		return nil, fmt.Errorf("%w (log: %s)", err, r.logPath)
	}
	return w, nil
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitServing polls until the webhook answers an HTTPS request, whatever
// the status, or it exits, or the timeout passes.
func (w *webhook) waitServing(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.url, nil)
		if err != nil {
			return err
		}
		if resp, err := w.client.Do(req); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-w.exited:
			return fmt.Errorf("webhook exited before serving: %v", w.err)
		case <-ctx.Done():
			return fmt.Errorf("webhook not serving within %s", timeout)
		case <-tick.C:
		}
	}
}

// stop sends SIGTERM and waits for the webhook to exit, killing it after 10s.
func (w *webhook) stop() {
	if w.target != nil {
		w.client.CloseIdleConnections()
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.exited:
	case <-time.After(10 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.exited
	}
}
