package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/manifest"
)

const encryptUsage = `Usage:
    jwe-encrypt -r RECIPIENT... [--namespace NS --name NAME] [-o FILE]
    jwe-encrypt -r RECIPIENT... -f MANIFEST [-i | -o FILE]
    jwe-encrypt inspect [FILE]            (see jwe-encrypt inspect -h)
    jwe-encrypt lint [--strict] PATH...   (see jwe-encrypt lint -h)

Encrypts a secret to the public key of each cluster that will hold it. Only
the webhook in that cluster can decrypt it, when the Secret is applied.

A single value is read from standard input (typed there without echo, or
piped: one final newline is dropped), or from --from-file; the JWE is printed.
Put it in the Secret's stringData.

With -f, every value of every Secret in the manifest (YAML or JSON, one or
more documents; "-" for standard input) that is not encrypted yet is
encrypted and written to stringData; values in data are decoded and moved
there. Encrypted values, other kinds and the rest of the file are left as
they are, so running it again changes nothing. A value is encrypted when it
is a valid JWE; one that only looks like one is an error.

Without -r, the recipients and default scope of a manifest come from the
nearest .jwe-encrypt.yaml above it (see the README), if any:

    rules:
      - path: clusters/prod/**     # relative to the file; ** spans directories
        recipients: [keys/prod.jwks.json, gcpkms://projects/…]
        scope: strict

Recipients:
    -r, --recipient RECIPIENT  Repeat for several clusters: a value then opens
                               with any of their keys. RECIPIENT is one of
        FILE                   a public key: PEM (SPKI, PKCS#1, certificate),
                               JWK or JWK Set, as published in git
        gcpkms://projects/P/locations/L/keyRings/R/cryptoKeys/K[/cryptoKeyVersions/N]
                               a Cloud KMS key (its newest enabled version) or
                               key version; Application Default Credentials
        vault://MOUNT/KEY[?version=N]
                               a Vault transit key (its latest version) or
                               key version; VAULT_ADDR, VAULT_TOKEN (or
                               ~/.vault-token), VAULT_CACERT, VAULT_NAMESPACE
        awskms://KEY           an AWS KMS RSA key (ENCRYPT_DECRYPT): its key ARN,
                               or an alias (alias/NAME or its ARN) or key ID,
                               resolved to the key ARN the kid names; the AWS
                               SDK's credentials, AWS_REGION for names that are
                               not ARNs
        azurekv://VAULT/keys/NAME[/VERSION]
                               an Azure Key Vault RSA key (its newest version)
                               or key version; VAULT is the vault's host
                               (NAME.vault.azure.net, or NAME alone); Azure's
                               default credentials ('az login')
        https://HOST/keys      the cluster's key set as the webhook serves it
                               on its metrics port (every key in it; plain
                               http only on a loopback address)

Binding (the webhook refuses a value stored anywhere else):
    --scope SCOPE          strict: this Secret only (namespace and name);
                           namespace: any Secret of the namespace;
                           cluster: any Secret anywhere.
                           Default for -f: strict. For one value: strict with
                           --namespace and --name, namespace with
                           --namespace alone, else cluster (with a warning).
    --namespace NS         The namespace. With -f, for Secrets that name none;
                           it is written into their metadata.
    --name NAME            The Secret's name (one value only; with -f each
                           Secret's metadata.name is used).

Input and output:
    -f, --file MANIFEST    Encrypt the Secrets of a manifest file, "-" for
                           standard input.
    -i, --in-place         With -f FILE: rewrite FILE.
    -o, --output FILE      Write to FILE instead of standard output.
    --from-file PATH       Encrypt the bytes of PATH exactly (no newline is
                           dropped).
    --from-literal VALUE   Encrypt VALUE. It lands in your shell history and
                           the process list: prefer standard input.

Algorithms:
    --kid KID              Key ID to write for a single key file recipient
                           (default: the webhook's: the JWK's kid or the key's
                           RFC 7638 thumbprint; a key service's version).
    --enc ENC              Content encryption: A256GCM (default), A128GCM,
                           A128CBC-HS256, A256CBC-HS512.

    --version              Print the version.

Examples:
    Encrypt a password typed at the prompt for Secret hr/db:
    $ jwe-encrypt -r cluster.pub.pem --namespace hr --name db

    From a password manager, for two clusters:
    $ pass show hr/db | jwe-encrypt -r prod.pub.pem -r dr.pub.pem --namespace hr --name db

    Encrypt every value of a manifest in place, with a Cloud KMS key:
    $ jwe-encrypt -r gcpkms://projects/p/locations/global/keyRings/k8s/cryptoKeys/secrets -f db-secret.yaml -i

    With a Vault transit key, from a pipeline:
    $ kubectl create secret generic db -n hr --from-file=password=pw.txt --dry-run=client -o yaml \
        | jwe-encrypt -r vault://transit/k8s-secrets -f - > db-secret.yaml
`

// Scopes, as --scope names them; jwe.Scope.Kind gives the same names.
const (
	scopeStrict    = "strict"
	scopeNamespace = "namespace"
	scopeCluster   = "cluster"
)

// skipAnnotation is admission.SkipAnnotation: the webhook leaves a Secret
// that has it alone, so its values must stay as they are.
const skipAnnotation = "jwe-webhook.io/skip"

// encryptOptions are the command line of encryption.
type encryptOptions struct {
	recipients      []string
	scope           string
	namespace, name string
	file, output    string
	inPlace         bool
	fromFile        string
	fromLiteral     string
	literal         bool // --from-literal was given, maybe empty
	kid, enc        string
	version         bool
	config          string // the .jwe-encrypt.yaml that gave the recipients
}

func (c *cli) parseEncrypt(args []string) (*encryptOptions, error) {
	var o encryptOptions
	fs := flag.NewFlagSet("jwe-encrypt", flag.ContinueOnError)
	recipient := func(s string) error { o.recipients = append(o.recipients, s); return nil }
	fs.Func("r", "", recipient)
	fs.Func("recipient", "", recipient)
	fs.StringVar(&o.scope, "scope", "", "")
	fs.StringVar(&o.namespace, "namespace", "", "")
	fs.StringVar(&o.name, "name", "", "")
	for _, n := range []string{"f", "file"} {
		fs.StringVar(&o.file, n, "", "")
	}
	for _, n := range []string{"i", "in-place"} {
		fs.BoolVar(&o.inPlace, n, false, "")
	}
	for _, n := range []string{"o", "output"} {
		fs.StringVar(&o.output, n, "", "")
	}
	fs.StringVar(&o.fromFile, "from-file", "", "")
	fs.Func("from-literal", "", func(s string) error { o.fromLiteral, o.literal = s, true; return nil })
	fs.StringVar(&o.kid, "kid", "", "")
	fs.StringVar(&o.enc, "enc", "", "")
	fs.BoolVar(&o.version, "version", false, "")
	args, err := c.parseFlags(fs, encryptUsage, args)
	if err != nil || o.version {
		return &o, err
	}
	if o.file != "" && len(o.recipients) == 0 {
		rule, from, err := configFor(o.file)
		if err != nil {
			return &o, err
		}
		if rule != nil {
			o.recipients, o.config = rule.Recipients, from
			if o.scope == "" {
				o.scope = rule.Scope
			}
		}
	}
	return &o, o.check(args)
}

// check rejects combinations of options that do not make sense, saying what
// would.
func (o *encryptOptions) check(args []string) error {
	if o.file != "" {
		return o.checkManifest(args)
	}
	switch {
	case len(args) > 0:
		return withHint(fmt.Errorf("unexpected argument %q", args[0]),
			"the value is read from standard input, so that it stays out of your shell history (or use --from-file FILE); to encrypt a manifest, use -f FILE")
	case o.inPlace:
		return withHint(errors.New("-i rewrites a manifest file"), "give it with -f FILE")
	case o.fromFile != "" && o.literal:
		return errors.New("--from-file and --from-literal both give the value; give one")
	case o.name != "" && o.namespace == "":
		return errors.New("--name needs --namespace: a Secret is named within a namespace")
	case o.scope == scopeStrict && (o.namespace == "" || o.name == ""):
		return withHint(errors.New("strict scope needs --namespace and --name"), "name the Secret that will hold the value, or choose --scope namespace")
	case o.scope == scopeNamespace && (o.namespace == "" || o.name != ""):
		return errors.New("namespace scope needs --namespace and no --name")
	}
	return o.checkCommon()
}

// checkManifest checks the options of manifest mode (-f).
func (o *encryptOptions) checkManifest(args []string) error {
	switch {
	case len(args) > 0:
		return withHint(fmt.Errorf("unexpected argument %q", args[0]), "-f takes one manifest; run jwe-encrypt once per file")
	case o.name != "":
		return withHint(errors.New("--name applies to a single value"), "in a manifest, each Secret's metadata.name is used")
	case o.fromFile != "" || o.literal:
		return errors.New("--from-file and --from-literal give a single value; -f reads a manifest")
	case o.inPlace && o.output != "":
		return errors.New("-i and -o both say where to write; give one")
	case o.inPlace && o.file == "-":
		return withHint(errors.New("-i rewrites a manifest file, not standard input"), "write the result elsewhere with -o FILE")
	}
	if o.scope == "" {
		o.scope = scopeStrict
	}
	return o.checkCommon()
}

// allowedEncryption reports whether jwe.Encrypt accepts enc.
func allowedEncryption(enc string) bool {
	for _, e := range jwe.ContentEncryptions {
		if string(e) == enc {
			return true
		}
	}
	return false
}

// checkCommon checks the options of both modes.
func (o *encryptOptions) checkCommon() error {
	switch {
	case len(o.recipients) == 0:
		return withHint(errors.New("no recipient"),
			"give the cluster's public key with -r FILE (it is in git), or its key service: -r gcpkms://… or -r vault://…; or set them once for a directory tree in "+configName)
	case !slices.Contains([]string{"", scopeStrict, scopeNamespace, scopeCluster}, o.scope):
		return withHint(fmt.Errorf("unknown scope %q", o.scope), "--scope is strict, namespace or cluster")
	case o.enc != "" && !allowedEncryption(o.enc):
		return withHint(fmt.Errorf("content encryption %q is not allowed", o.enc), "--enc is one of A256GCM (default), A128GCM, A128CBC-HS256, A256CBC-HS512")
	case o.kid != "" && len(o.recipients) > 1:
		return errors.New("--kid applies to one recipient; with several, each key's own kid is used")
	case (o.namespace != "" || o.name != "") && o.scope == scopeCluster:
		return errors.New("--scope cluster binds values to no namespace; leave out --namespace and --name")
	}
	return nil
}

func (c *cli) encrypt(ctx context.Context, args []string) error {
	o, err := c.parseEncrypt(args)
	if err != nil {
		return err
	}
	if o.version {
		fmt.Fprintf(c.stdout, "jwe-encrypt %s\n", versionString())
		return nil
	}
	ks := &keyServices{getenv: c.getenv, warnf: c.warnf}
	defer ks.close()
	r := &recipients{resolver: ks, specs: o.recipients, kid: o.kid}
	if o.file != "" {
		return c.encryptManifest(ctx, o, r)
	}
	return c.encryptValue(ctx, o, r)
}

// encryptValue encrypts one value and prints the JWE.
func (c *cli) encryptValue(ctx context.Context, o *encryptOptions, r *recipients) error {
	scope := jwe.Scope{Namespace: o.namespace, Name: o.name}
	switch {
	case o.scope == scopeCluster:
		c.warnf("--scope cluster: any Secret in any namespace of the cluster can use this value")
	case scope.Kind() == scopeCluster:
		c.warnf("the value is bound to no namespace: any Secret in any namespace of the cluster can use it (bind it with --namespace NS --name NAME, or say --scope cluster)")
	}
	// Keys first: a key service that fails should not cost a typed secret.
	keys, err := r.publicKeys(ctx)
	if err != nil {
		return err
	}
	value, err := c.readValue(o)
	if err != nil {
		return err
	}
	out, err := jwe.Encrypt(value, scope, o.enc, keys...)
	if err != nil {
		return err
	}
	return c.write(o.output, []byte(out+"\n"))
}

// readValue reads the value to encrypt from where the options say.
func (c *cli) readValue(o *encryptOptions) ([]byte, error) {
	var value []byte
	var err error
	switch {
	case o.literal:
		c.warnf("--from-literal puts the secret in your shell history and the process list; prefer standard input or --from-file")
		value = []byte(o.fromLiteral)
	case o.fromFile != "":
		if value, err = readFile(o.fromFile, jwe.MaxSize); err != nil {
			return nil, err
		}
	case c.prompt != nil:
		return c.promptValue()
	default:
		if value, err = readAll(c.stdin, "standard input", jwe.MaxSize); err != nil {
			return nil, err
		}
		value = trimNewline(value)
	}
	if len(value) == 0 {
		return nil, withHint(errors.New("the value is empty"), `pipe it in without a newline: printf %%s "$SECRET" | jwe-encrypt …`)
	}
	return value, nil
}

// promptValue asks for the value twice on the terminal.
func (c *cli) promptValue() ([]byte, error) {
	value, err := c.prompt("Value to encrypt (not shown): ")
	if err != nil {
		return nil, fmt.Errorf("read value: %w", err)
	}
	if len(value) == 0 {
		return nil, errors.New("the value is empty")
	}
	again, err := c.prompt("Again, to check: ")
	if err != nil {
		return nil, fmt.Errorf("read value: %w", err)
	}
	if !bytes.Equal(value, again) {
		return nil, errors.New("the two values differ; nothing was encrypted")
	}
	return value, nil
}

// trimNewline removes one trailing "\n" or "\r\n".
func trimNewline(b []byte) []byte {
	if b, ok := bytes.CutSuffix(b, []byte("\n")); ok {
		b, _ = bytes.CutSuffix(b, []byte("\r"))
		return b
	}
	return b
}

// encryptManifest encrypts the values of the Secrets in a manifest.
func (c *cli) encryptManifest(ctx context.Context, o *encryptOptions, r *recipients) error {
	name := displayName(o.file)
	data, err := c.readInput(o.file, maxManifestSize)
	if err != nil {
		return err
	}
	f, err := manifest.Parse(data)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	secrets := f.Secrets()
	if len(secrets) == 0 {
		return withHint(fmt.Errorf("%s: no Secret (apiVersion: v1, kind: Secret)", name),
			"to encrypt a single value, leave out -f and give the value on standard input")
	}
	if o.scope == scopeCluster {
		c.warnf("--scope cluster: any Secret in any namespace of the cluster can use these values")
	}
	if o.config != "" {
		fmt.Fprintf(c.stderr, "jwe-encrypt: %s: recipients and scope from %s\n", name, o.config)
	}
	var n, done int
	for _, s := range secrets {
		k, err := c.encryptSecret(ctx, name, s, o, r)
		if err != nil {
			return err
		}
		n += k
		done += len(s.Values) - k
	}
	out, err := f.Bytes()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if !f.Edited() && o.inPlace {
		fmt.Fprintf(c.stderr, "jwe-encrypt: %s: nothing to encrypt (%s already encrypted)\n", name, count(done, "value"))
		return nil
	}
	dest := o.output
	if o.inPlace {
		dest = o.file
	}
	if err := c.write(dest, out); err != nil {
		return err
	}
	if dest != "" {
		fmt.Fprintf(c.stderr, "jwe-encrypt: %s: encrypted %s (%d already encrypted)\n", displayName(dest), count(n, "value"), done)
	}
	return nil
}

// encryptSecret encrypts the values of s that are not encrypted yet and
// returns how many it encrypted.
func (c *cli) encryptSecret(ctx context.Context, file string, s *manifest.Secret, o *encryptOptions, r *recipients) (int, error) {
	where := fmt.Sprintf("%s:%d: Secret %s", file, s.Line, s)
	if s.Err != nil {
		return 0, fmt.Errorf("%s: %w", where, s.Err)
	}
	var todo []manifest.Value
	for _, v := range s.Values {
		if v.Err != nil {
			return 0, fmt.Errorf("%s:%d: Secret %s: %s key %q %v", file, v.Line, s, v.Field, v.Key, v.Err)
		}
		if !jwe.Detect(v.Bytes) {
			todo = append(todo, v)
			continue
		}
		// Encrypted only when it is a JWE the webhook accepts: a value that
		// merely looks like one may be plaintext, and would be refused.
		if _, err := jwe.Parse(v.Bytes); err != nil {
			return 0, withHint(fmt.Errorf("%s:%d: Secret %s: key %q has the shape of a JWE but is not a valid one: %w", file, v.Line, s, v.Key, err),
				"if it is plaintext, move it out of the way of JWE detection (it has a \"ciphertext\" member or looks like a compact JWE); if it is a JWE, encrypt it again")
		}
	}
	if len(todo) == 0 {
		return 0, nil
	}
	if skip, _ := strconv.ParseBool(s.Annotations[skipAnnotation]); skip {
		c.warnf("%s is annotated %s, so the webhook does not decrypt it; its values are left as they are", where, skipAnnotation)
		return 0, nil
	}
	scope, err := scopeOf(where, s, o)
	if err != nil {
		return 0, err
	}
	keys, err := r.publicKeys(ctx)
	if err != nil {
		return 0, err
	}
	for _, v := range todo {
		out, err := jwe.Encrypt(v.Bytes, scope, o.enc, keys...)
		if err != nil {
			return 0, fmt.Errorf("%s: key %q: %w", where, v.Key, err)
		}
		if err := s.SetStringData(v.Key, out); err != nil {
			return 0, fmt.Errorf("%s: key %q: %w", where, v.Key, err)
		}
	}
	return len(todo), nil
}

// scopeOf returns what the values of s are bound to under the options,
// writing --namespace into a Secret that names none.
func scopeOf(where string, s *manifest.Secret, o *encryptOptions) (jwe.Scope, error) {
	if o.scope == scopeCluster {
		return jwe.Scope{}, nil
	}
	switch {
	case s.Namespace != "" && o.namespace != "" && s.Namespace != o.namespace:
		return jwe.Scope{}, withHint(fmt.Errorf("%s is in namespace %q, not %q (--namespace)", where, s.Namespace, o.namespace),
			"leave out --namespace: it is for Secrets that name no namespace")
	case s.Namespace == "" && o.namespace != "":
		if err := s.SetNamespace(o.namespace); err != nil {
			return jwe.Scope{}, fmt.Errorf("%s: %w", where, err)
		}
	case s.Namespace == "":
		return jwe.Scope{}, withHint(fmt.Errorf("%s has no metadata.namespace, and %s scope binds each value to one", where, o.scope),
			"add metadata.namespace to the Secret, or set it with --namespace NS, or bind the values to no namespace with --scope cluster")
	}
	if o.scope == scopeNamespace {
		return jwe.Scope{Namespace: s.Namespace}, nil
	}
	if s.Name == "" {
		return jwe.Scope{}, withHint(fmt.Errorf("%s has no metadata.name, and strict scope binds each value to one Secret", where),
			"add metadata.name (generateName cannot be used with strict scope), or use --scope namespace")
	}
	return jwe.Scope{Namespace: s.Namespace, Name: s.Name}, nil
}

// count writes n things: "1 value", "2 values".
func count(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
