package main

// decrypt-for-test, the scripts' stand-in for the webhook: it sends each
// Secret through the webhook's own admission logic.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"go.uber.org/zap"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/jwe-webhook/jwe-webhook/internal/admission"
	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/gcpkms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/local"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/vault"
	"github.com/jwe-webhook/jwe-webhook/internal/manifest"
)

const decryptUsage = `usage:
    decrypt-for-test KEYS NAMESPACE NAME < JWE     print the plaintext, quoted
    decrypt-for-test KEYS -f MANIFEST              print ns/name key="plaintext" per value
KEYS is a comma-separated list of private key files, gcpkms://NAME,
vault://MOUNT/KEY, awskms://ARN and azurekv://VAULT/keys/NAME (reached as
jwe-encrypt reaches them). Each Secret goes
through the webhook's own admission logic (admission.Reviewer) with a
keyring of KEYS: a denial is an error holding its code and message.`

// decryptForTest is the scripts' stand-in for the webhook.
func decryptForTest(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) != 3 {
		fmt.Fprintln(stderr, decryptUsage)
		return 2
	}
	if err := decryptToStdout(args, stdin, stdout); err != nil {
		fmt.Fprintf(stderr, "decrypt-for-test: %v\n", err)
		return 1
	}
	return 0
}

func decryptToStdout(args []string, stdin io.Reader, stdout io.Writer) error {
	ctx := context.Background()
	kr, closeKeys, err := keyring(ctx, strings.Split(args[0], ","))
	defer closeKeys()
	if err != nil {
		return err
	}
	if args[1] == "-f" {
		return decryptManifest(ctx, kr, args[2], stdout)
	}
	in, err := io.ReadAll(stdin)
	if err != nil {
		return err
	}
	pt, err := decryptValue(ctx, kr, in, args[1], args[2])
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%q\n", pt)
	return err
}

// keyring builds the webhook's keyring from key files and key services.
func keyring(ctx context.Context, specs []string) (*kms.Keyring, func(), error) {
	var entries []kms.Entry
	var closers []func()
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	for _, spec := range specs {
		switch {
		case strings.HasPrefix(spec, gcpkmsScheme):
			ep, err := gcpEndpoint(os.Getenv)
			if err != nil {
				return nil, closeAll, err
			}
			c, err := gcpkms.NewClient(ctx, ep.ClientOptions()...)
			if err != nil {
				return nil, closeAll, err
			}
			closers = append(closers, func() { c.Close() })
			k, err := c.Key(strings.TrimPrefix(spec, gcpkmsScheme))
			if err != nil {
				return nil, closeAll, err
			}
			entries = append(entries, kms.Entry{Decrypter: k, Provider: "gcpkms"})
		case strings.HasPrefix(spec, vaultScheme):
			mount, key, _, err := vault.ParseKeyID(spec)
			if err != nil {
				return nil, closeAll, err
			}
			k, err := vault.New(ctx, vault.Config{Address: os.Getenv("VAULT_ADDR"), Mount: mount, Key: key,
				Auth: vault.AuthConfig{Method: vault.AuthToken, Token: os.Getenv("VAULT_TOKEN")}}, nil)
			if err != nil {
				return nil, closeAll, err
			}
			closers = append(closers, func() { k.Close() })
			entries = append(entries, kms.Entry{Decrypter: k, Provider: "vault"})
		case isCloudService(spec):
			ks := &keyServices{getenv: os.Getenv, warnf: func(string, ...any) {}}
			d, err := ks.decrypter(ctx, spec)
			if err != nil {
				return nil, closeAll, err
			}
			entries = append(entries, kms.Entry{Decrypter: d, Provider: strings.TrimSuffix(spec[:strings.Index(spec, ":")], ":")})
		default:
			keys, err := local.LoadFile(spec)
			if err != nil {
				return nil, closeAll, err
			}
			for _, k := range keys {
				entries = append(entries, kms.Entry{Decrypter: k, Provider: "local"})
			}
		}
	}
	kr, err := kms.NewKeyring(kms.Options{}, entries...)
	return kr, closeAll, err
}

// decryptValue has the webhook's admission logic review the CREATE of Secret
// namespace/name holding value, and returns the plaintext it patches in.
func decryptValue(ctx context.Context, kr *kms.Keyring, value []byte, namespace, name string) ([]byte, error) {
	if !jwe.Detect(value) {
		return nil, jwe.ErrNotJWE
	}
	pts, err := review(ctx, kr, namespace, name, map[string][]byte{"value": value})
	if err != nil {
		return nil, err
	}
	return pts["value"], nil
}

// review sends the CREATE of Secret namespace/name with data through
// admission.Reviewer, as the apiserver sends it to the webhook, and returns
// the values its patch sets. A denial is an error holding its message.
func review(ctx context.Context, kr *kms.Keyring, namespace, name string, data map[string][]byte) (map[string][]byte, error) {
	raw, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": name, "namespace": namespace}, "data": data})
	if err != nil {
		return nil, err
	}
	req := &admissionv1.AdmissionRequest{
		UID:       "decrypt-for-test",
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Secret"},
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "secrets"},
		Operation: admissionv1.Create,
		Namespace: namespace,
		Name:      name,
		Object:    runtime.RawExtension{Raw: raw},
	}
	resp := admission.NewReviewer(kr, admission.Options{}).Review(ctx, zap.NewNop(), req)
	if !resp.Allowed {
		return nil, fmt.Errorf("denied (%d): %s", resp.Result.Code, resp.Result.Message)
	}
	var patch []struct {
		Op, Path string
		Value    []byte
	}
	if len(resp.Patch) > 0 {
		if err := json.Unmarshal(resp.Patch, &patch); err != nil {
			return nil, fmt.Errorf("patch: %w", err)
		}
	}
	out := map[string][]byte{}
	for _, op := range patch {
		key, ok := strings.CutPrefix(op.Path, "/data/")
		if op.Op != "replace" || !ok {
			return nil, fmt.Errorf("unexpected patch operation %s %s", op.Op, op.Path)
		}
		out[strings.NewReplacer("~1", "/", "~0", "~").Replace(key)] = op.Value
	}
	return out, nil
}

// decryptManifest reviews each Secret of a manifest as the apiserver would
// send it (stringData merged into data) and prints every value.
func decryptManifest(ctx context.Context, kr *kms.Keyring, path string, w io.Writer) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	f, err := manifest.Parse(data)
	if err != nil {
		return err
	}
	for _, s := range f.Secrets() {
		values := map[string][]byte{}
		for _, v := range s.Values {
			if v.Err != nil {
				return fmt.Errorf("%s key %q: %w", s, v.Key, v.Err)
			}
			values[v.Key] = v.Bytes
		}
		pts, err := review(ctx, kr, s.Namespace, s.Name, values)
		if err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		for _, v := range s.Values {
			pt, ok := pts[v.Key]
			if !ok {
				pt = v.Bytes
				fmt.Fprint(w, "(not encrypted) ")
			}
			fmt.Fprintf(w, "%s %s=%q\n", s, v.Key, pt)
		}
	}
	return nil
}
