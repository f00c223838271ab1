package harness

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Kubectl runs kubectl as the admin with stdin (may be nil) and returns its
// stdout. On failure the error holds kubectl's stderr.
func (c *Cluster) Kubectl(ctx context.Context, stdin []byte, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.cfg.Bins.Kubectl, append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+filepath.Join(c.cfg.Dir, "home"), "KUBECONFIG="+c.Kubeconfig)
	return run(cmd, stdin)
}

// Scope binds a JWE to a namespace and name (both set), a namespace (Name
// empty) or nothing (both empty: cluster-wide).
type Scope struct {
	Namespace, Name string
}

// Encrypt runs jwe-encrypt to encrypt value to recipient (a public key file,
// or a key service such as gcpkms://… or vault://…, reached through
// Config.EncryptEnv) with scope and returns the compact JWE.
func (c *Cluster) Encrypt(ctx context.Context, recipient string, value []byte, scope Scope) (string, error) {
	return c.EncryptToAll(ctx, []string{recipient}, value, scope)
}

// EncryptToAll is Encrypt to several recipients: any of their keys opens the
// value, a JWE in the JSON serialization.
func (c *Cluster) EncryptToAll(ctx context.Context, recipients []string, value []byte, scope Scope) (string, error) {
	var args []string
	for _, r := range recipients {
		args = append(args, "-r", r)
	}
	if scope.Namespace != "" {
		args = append(args, "--namespace", scope.Namespace)
	}
	if scope.Name != "" {
		args = append(args, "--name", scope.Name)
	}
	cmd := exec.CommandContext(ctx, c.cfg.Bins.JWEEncrypt, args...)
	cmd.Env = append(os.Environ(), c.cfg.EncryptEnv...)
	out, err := run(cmd, value)
	return strings.TrimSpace(out), err
}

// EncryptManifest runs jwe-encrypt in manifest mode on the file at path, in
// place: every Secret value is encrypted to recipient and bound to its Secret.
func (c *Cluster) EncryptManifest(ctx context.Context, recipient, path string) (string, error) {
	cmd := exec.CommandContext(ctx, c.cfg.Bins.JWEEncrypt, "-r", recipient, "-f", path, "-i")
	cmd.Env = append(os.Environ(), c.cfg.EncryptEnv...)
	return run(cmd, nil)
}

// JWEEncrypt runs jwe-encrypt with args, in the environment that points it
// at the key services, and returns its standard output and error.
func (c *Cluster) JWEEncrypt(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, c.cfg.Bins.JWEEncrypt, args...)
	cmd.Env = append(os.Environ(), c.cfg.EncryptEnv...)
	var errBuf bytes.Buffer
	cmd.Stderr = &errBuf
	out, err := cmd.Output()
	if err != nil {
		err = &CommandError{Args: cmd.Args, Stderr: errBuf.String(), Err: err}
	}
	return string(out), errBuf.String(), err
}

// run runs cmd with stdin and returns its stdout; the error names the command
// and holds its stderr.
func run(cmd *exec.Cmd, stdin []byte) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), &CommandError{Args: cmd.Args, Stderr: stderr.String(), Err: err}
	}
	return stdout.String(), nil
}

// CommandError is a failed run of a program.
type CommandError struct {
	Args   []string
	Stderr string
	Err    error
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("%s: %v\nstderr:\n%s", strings.Join(e.Args, " "), e.Err, e.Stderr)
}

func (e *CommandError) Unwrap() error { return e.Err }

// EtcdGet reads a key straight from etcd through its JSON gateway
// (/v3/kv/range), bypassing the apiserver: what it returns is what sits on
// disk. ok is false when the key does not exist.
func (c *Cluster) EtcdGet(ctx context.Context, key string) (value []byte, ok bool, err error) {
	req := fmt.Sprintf(`{"key":%q}`, base64.StdEncoding.EncodeToString([]byte(key)))
	code, body, err := httpDo(ctx, http.DefaultClient, http.MethodPost, c.EtcdURL+"/v3/kv/range", req)
	if err != nil {
		return nil, false, fmt.Errorf("etcd range %q: %w", key, err)
	}
	if code != http.StatusOK {
		return nil, false, fmt.Errorf("etcd range %q: HTTP %d: %s", key, code, body)
	}
	var resp struct {
		KVs []struct {
			Value []byte `json:"value"` // base64 in JSON
		} `json:"kvs"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		return nil, false, fmt.Errorf("etcd range %q: decode response: %w", key, err)
	}
	if len(resp.KVs) == 0 {
		return nil, false, nil
	}
	return resp.KVs[0].Value, true, nil
}

// SecretKey is the etcd key under which the apiserver stores a Secret.
func SecretKey(namespace, name string) string {
	return "/registry/secrets/" + namespace + "/" + name
}

func httpGet(ctx context.Context, client *http.Client, url string) (string, error) {
	code, body, err := httpDo(ctx, client, http.MethodGet, url, "")
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("GET %s: HTTP %d: %s", url, code, body)
	}
	return body, err
}

// maxResponseBytes caps a response body read by httpDo: etcd's answer for the
// largest Secret (1 MiB of data, base64 in JSON) fits.
const maxResponseBytes = 4 << 20

func httpDo(ctx context.Context, client *http.Client, method, url, body string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	return resp.StatusCode, string(data), err
}
