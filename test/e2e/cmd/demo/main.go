// Command demo shows jwe-webhook end to end on a real control plane: a value
// encrypted with jwe-encrypt sits in a Secret manifest as ciphertext, kubectl
// apply stores it, the API returns the plaintext, and etcd holds it encrypted at
// rest. `make demo` runs it through hack/demo.sh, which builds the programs and
// checks afterwards that no process is left behind.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/jwe-webhook/jwe-webhook/test/e2e/harness"
)

// The Secret the demo encrypts and applies.
const (
	namespace = "hr"
	name      = "hr-database"
	dataKey   = "password"
	password  = "correct horse battery staple"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	dir := fs.String("dir", "", "an empty working directory for certificates, keys, etcd data and logs")
	webhookManifest := fs.String("webhook-manifest", "manifests/base/mutatingwebhookconfiguration.yaml", "the MutatingWebhookConfiguration to register")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("--dir is required")
	}
	bins, err := harness.BinariesFromEnv()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	c, err := harness.Start(ctx, harness.Config{
		Dir:             *dir,
		Bins:            bins,
		WebhookManifest: *webhookManifest,
		Logf:            step,
	})
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}
	if err != nil {
		return err
	}
	defer func() {
		step("stopping the webhook, kube-apiserver and etcd")
		c.Stop()
	}()
	if _, err := c.Kubectl(ctx, nil, "create", "namespace", namespace); err != nil {
		return err
	}

	step("encrypting the %s with bin/jwe-encrypt, bound to Secret %s/%s (needs only the public key)", dataKey, namespace, name)
	fmt.Printf("    $ echo -n '%s' | jwe-encrypt -r %s --namespace %s --name %s\n", password, filepath.Base(c.Key.PublicFile), namespace, name)
	jwe, err := c.Encrypt(ctx, c.Key.PublicFile, []byte(password), harness.Scope{Namespace: namespace, Name: name})
	if err != nil {
		return err
	}
	manifestFile := filepath.Join(*dir, name+".yaml")
	manifest := fmt.Sprintf(`# %s/%s: the value is a JWE made with jwe-encrypt; only the webhook's key opens it.
apiVersion: v1
kind: Secret
metadata:
  name: %s
  namespace: %s
type: Opaque
stringData:
  %s: %s
`, namespace, name, name, namespace, dataKey, jwe)
	if err := os.WriteFile(manifestFile, []byte(manifest), 0o600); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	step("applying it as a CI pipeline would: kubectl apply -f %s.yaml", name)
	out, err := c.Kubectl(ctx, nil, "apply", "-f", manifestFile)
	if err != nil {
		return err
	}
	fmt.Print(indent(out))

	heading("1. In git: the manifest CI applies (ciphertext)")
	fmt.Print(manifest)
	if header, err := protectedHeader(jwe); err == nil {
		fmt.Printf("\nits JWE protected header (authenticated, so the binding cannot be edited):\n  %s\n", header)
	}

	heading("2. In the cluster: kubectl get secret -n " + namespace + " " + name + " (data base64-decoded)")
	out, err = c.Kubectl(ctx, nil, "get", "secret", "-n", namespace, name, "-o", "json")
	if err != nil {
		return err
	}
	var secret struct {
		Data map[string][]byte `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &secret); err != nil {
		return fmt.Errorf("decode kubectl get output: %w", err)
	}
	keys := make([]string, 0, len(secret.Data))
	for k := range secret.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("%s: %s\n", k, secret.Data[k])
	}

	key := harness.SecretKey(namespace, name)
	heading("3. In etcd: " + key + " (encrypted at rest)")
	raw, ok, err := c.EtcdGet(ctx, key)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("etcd has no key %s", key)
	}
	// "k8s:enc:secretbox:v1:key1:" then the ciphertext.
	var prefix []byte
	if parts := bytes.SplitN(raw, []byte(":"), 6); len(parts) == 6 {
		prefix = raw[:len(raw)-len(parts[5])]
	}
	fmt.Printf("%d bytes: the prefix %q names the provider and key, then ciphertext:\n", len(raw), prefix)
	fmt.Print(hex.Dump(raw[:min(len(raw), 128)]))
	if len(raw) > 128 {
		fmt.Printf("... %d more bytes\n", len(raw)-128)
	}
	fmt.Printf("the plaintext %q appears in these bytes: %v\n", password, bytes.Contains(raw, []byte(password)))
	fmt.Println()
	return nil
}

// protectedHeader decodes a compact JWE's protected header.
func protectedHeader(jwe string) (string, error) {
	b64, _, _ := strings.Cut(jwe, ".")
	b, err := base64.RawURLEncoding.DecodeString(b64)
	return string(b), err
}

func step(format string, args ...any) {
	fmt.Printf("==> "+format+"\n", args...)
}

func heading(title string) {
	fmt.Printf("\n━━━ %s ━━━\n", title)
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ") + "\n"
}
