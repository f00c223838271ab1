package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/manifest"
)

const decryptCommandUsage = `Usage:
    jwe-encrypt decrypt [-k KEY]... [--reveal [-o FILE]] [FILE]

Break glass: opens values with a recovery private key or a key service, for
disaster recovery (a cluster is lost, a key service is gone). FILE is a JWE
or a manifest; without FILE, or with "-", standard input is read.

Without --reveal nothing secret is written: each value is opened, to prove
that the key works, and named with the key that opened it. With --reveal
the plaintext is written to standard output or FILE (created with mode
0600): a JWE's bytes, or the manifest with each value decrypted in place (in
data, encoded in base64; in stringData, as text). Standard error says what
was revealed: file, Secret and data keys, never the values. Nothing is
written when any value fails.

Each value is opened with a key given with -k, or with the key service its
kid names (a Cloud KMS key version, vault://MOUNT/KEY?version=N, an AWS KMS
key ARN, a Key Vault key version URL) when you may decrypt with it.

Options:
    -k, --key KEY     A private key file (PEM or JWK) or a key service
                      (gcpkms://…, vault://…) to open values with.
    --reveal          Write the plaintext.
    -o, --output FILE Write it to FILE instead of standard output.

Examples:
    Check that the offline recovery key opens every value:
    $ jwe-encrypt decrypt -k recovery.pem clusters/prod/db-secret.yaml

    Recover a Secret to apply it by hand:
    $ jwe-encrypt decrypt -k recovery.pem --reveal -o /dev/shm/db.yaml clusters/prod/db-secret.yaml
`

// decryptOptions are the command line of decrypt.
type decryptOptions struct {
	keys   []string
	reveal bool
	output string
	path   string
}

func (c *cli) parseDecrypt(args []string) (*decryptOptions, error) {
	o := decryptOptions{path: "-"}
	fs := flag.NewFlagSet("jwe-encrypt decrypt", flag.ContinueOnError)
	key := func(s string) error { o.keys = append(o.keys, s); return nil }
	fs.Func("k", "", key)
	fs.Func("key", "", key)
	fs.BoolVar(&o.reveal, "reveal", false, "")
	for _, n := range []string{"o", "output"} {
		fs.StringVar(&o.output, n, "", "")
	}
	args, err := c.parseFlags(fs, decryptCommandUsage, args)
	if err != nil {
		return nil, err
	}
	switch {
	case len(args) > 1:
		return nil, withHint(errors.New("decrypt reads one file"), "run it once per file")
	case len(args) == 1:
		o.path = args[0]
	}
	switch {
	case o.output != "" && !o.reveal:
		return nil, withHint(errors.New("-o writes plaintext, which needs --reveal"), "say --reveal to write the plaintext")
	case o.path == "-" && c.prompt != nil:
		return nil, withHint(errors.New("decrypt reads a JWE or a manifest, and standard input is a terminal"), "give a FILE, or pipe it in")
	}
	return &o, nil
}

func (c *cli) decrypt(ctx context.Context, args []string) error {
	o, err := c.parseDecrypt(args)
	if err != nil {
		return err
	}
	ks := &keyServices{getenv: c.getenv, warnf: c.warnf}
	defer ks.close()
	open := &openers{ks: ks, specs: o.keys}
	name := displayName(o.path)
	data, err := c.readInput(o.path, maxManifestSize)
	if err != nil {
		return err
	}
	if jwe.Detect(data) {
		return c.decryptValue(ctx, o, open, name, data)
	}
	f, err := manifest.Parse(data)
	if err != nil {
		return fmt.Errorf("%s: neither a JWE nor a manifest: %w", name, err)
	}
	if len(f.Secrets()) == 0 {
		return fmt.Errorf("%s: neither a JWE nor a manifest with a Secret", name)
	}
	var revealed []string
	for _, s := range f.Secrets() {
		keys, err := c.decryptSecret(ctx, o, open, name, s)
		if err != nil {
			return fmt.Errorf("%w; nothing was written", err)
		}
		if len(keys) > 0 {
			revealed = append(revealed, fmt.Sprintf("%s: Secret %s: keys %s", name, s, strings.Join(keys, ", ")))
		}
	}
	if !o.reveal {
		fmt.Fprintf(c.stderr, "jwe-encrypt: decrypt: every value opens; nothing revealed (--reveal writes the plaintext)\n")
		return nil
	}
	out, err := f.Bytes()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer clear(out)
	if err := c.writeMode(o.output, out, 0o600); err != nil {
		return err
	}
	for _, r := range revealed {
		fmt.Fprintf(c.stderr, "jwe-encrypt: revealed %s\n", r)
	}
	return nil
}

// decryptValue opens one JWE.
func (c *cli) decryptValue(ctx context.Context, o *decryptOptions, open *openers, name string, data []byte) error {
	obj, err := jwe.Parse(data)
	if err != nil {
		return fmt.Errorf("%s: not a valid JWE: %w", name, err)
	}
	plaintext, used, err := obj.Decrypt(ctx, open)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer clear(plaintext)
	if !o.reveal {
		fmt.Fprintf(c.stdout, "%s: opens with kid %s (%s)\n", name, used.KeyID, scopeText(obj.Scope))
		fmt.Fprintf(c.stderr, "jwe-encrypt: decrypt: nothing revealed (--reveal writes the plaintext)\n")
		return nil
	}
	if err := c.writeMode(o.output, plaintext, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "jwe-encrypt: revealed %s (%s)\n", name, scopeText(obj.Scope))
	return nil
}

// decryptSecret opens the JWE values of s, replacing them with their
// plaintext when revealing, and returns their data keys.
func (c *cli) decryptSecret(ctx context.Context, o *decryptOptions, open *openers, name string, s *manifest.Secret) ([]string, error) {
	if s.Err != nil {
		return nil, fmt.Errorf("%s:%d: Secret %s: %w", name, s.Line, s, s.Err)
	}
	var keys []string
	for _, v := range s.Values {
		where := fmt.Sprintf("%s:%d: Secret %s: key %q", name, v.Line, s, v.Key)
		if v.Err != nil {
			return nil, fmt.Errorf("%s %v", where, v.Err)
		}
		if !jwe.Detect(v.Bytes) {
			continue
		}
		obj, err := jwe.Parse(v.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s is not a valid JWE: %w", where, err)
		}
		plaintext, used, err := obj.Decrypt(ctx, open)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if err := scopeMismatch(s, obj); err != nil {
			c.warnf("%s: %v; the webhook would refuse it here", where, err)
		}
		if !o.reveal {
			clear(plaintext)
			fmt.Fprintf(c.stdout, "%s: opens with kid %s\n", where, used.KeyID)
			continue
		}
		err = s.Replace(v.Key, plaintext)
		clear(plaintext)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		keys = append(keys, fmt.Sprintf("%q", v.Key))
	}
	return keys, nil
}
