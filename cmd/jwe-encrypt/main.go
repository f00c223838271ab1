// Command jwe-encrypt encrypts a secret value to a public key, as a JWE that
// jwe-webhook decrypts when the Secret that holds it is applied.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/local"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `Usage:
    jwe-encrypt -r PUBLIC-KEY [--namespace NS [--name NAME]] < value > value.jwe

Encrypts the value read from standard input to a public key and prints a
compact JWE (one recipient) or a JWE JSON serialization (several). Put the
output in a Secret's stringData; jwe-webhook decrypts it when the Secret is
applied, and only there.

Options:
    -r, --recipient FILE   Public key to encrypt to: PEM (SPKI, PKCS#1,
                           certificate), JWK or JWK Set. Repeat to encrypt
                           for several clusters at once.
    --namespace NS         Bind the value to namespace NS.
    --name NAME            With --namespace, bind the value to Secret NAME.
    --kid KID              Key ID to write (default: the key's JWK thumbprint,
                           or the kid a JWK names). Only with one recipient.
    --enc ALG              Content encryption: A256GCM (default), A128GCM,
                           A128CBC-HS256, A256CBC-HS512.
    --version              Print the version and exit.

The value is read from standard input; one trailing newline is removed, so
'echo pw | jwe-encrypt …' encrypts "pw".

Examples:
    $ jwe-encrypt -r cluster-key.pub.pem --namespace shop --name db < password.txt
    $ printf %s "$PASSWORD" | jwe-encrypt -r prod.pem -r staging.pem --namespace shop
`

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(os.Stderr, "jwe-encrypt: %v\n", err)
		}
		os.Exit(1)
	}
}

// options are the parsed command line.
type options struct {
	recipients      []string
	namespace, name string
	kid, enc        string
	version         bool
}

func parse(args []string, stderr io.Writer) (*options, error) {
	var o options
	fs := flag.NewFlagSet("jwe-encrypt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { io.WriteString(stderr, usage) }
	addRecipient := func(s string) error { o.recipients = append(o.recipients, s); return nil }
	fs.Func("r", "", addRecipient)
	fs.Func("recipient", "", addRecipient)
	fs.StringVar(&o.namespace, "namespace", "", "")
	fs.StringVar(&o.name, "name", "", "")
	fs.StringVar(&o.kid, "kid", "", "")
	fs.StringVar(&o.enc, "enc", "", "")
	fs.BoolVar(&o.version, "version", false, "")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.version {
		return &o, nil
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q; the value is read from standard input", fs.Arg(0))
	case len(o.recipients) == 0:
		return nil, errors.New("no recipient: give a public key with -r FILE (see -h)")
	case o.name != "" && o.namespace == "":
		return nil, errors.New("--name needs --namespace: a Secret is named within a namespace")
	case o.kid != "" && len(o.recipients) > 1:
		return nil, errors.New("--kid applies to one recipient; with several, each key's own kid is used")
	}
	return &o, nil
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	o, err := parse(args, stderr)
	if err != nil {
		return err
	}
	if o.version {
		fmt.Fprintf(stdout, "jwe-encrypt %s\n", version)
		return nil
	}
	var recipients []jwe.PublicKey
	for _, path := range o.recipients {
		keys, err := readPublicKeys(path)
		if err != nil {
			return err
		}
		for _, k := range keys {
			recipients = append(recipients, jwe.PublicKey{Key: k.Key, KeyID: k.KeyID, Algorithm: k.Algorithm})
		}
	}
	if o.kid != "" {
		if len(recipients) != 1 {
			return fmt.Errorf("--kid applies to one recipient; %q holds %d keys", o.recipients[0], len(recipients))
		}
		recipients[0].KeyID = o.kid
	}
	value, err := io.ReadAll(io.LimitReader(stdin, jwe.MaxSize+1))
	if err != nil {
		return fmt.Errorf("read value: %w", err)
	}
	if len(value) > jwe.MaxSize {
		return fmt.Errorf("value is larger than %d bytes; a Secret holds at most 1 MiB", jwe.MaxSize)
	}
	value = trimNewline(value)
	if len(value) == 0 {
		return errors.New("empty value on standard input (hint: printf %s \"$SECRET\" | jwe-encrypt …)")
	}
	out, err := jwe.Encrypt(value, jwe.Scope{Namespace: o.namespace, Name: o.name}, o.enc, recipients...)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, out)
	return err
}

// readPublicKeys reads the public keys of one recipient file.
func readPublicKeys(path string) ([]local.PublicKey, error) {
	keys, err := local.LoadPublicFile(path)
	if err != nil && strings.Contains(err.Error(), "private key") {
		return nil, fmt.Errorf("%w (hint: give custodians the public key: openssl pkey -in KEY -pubout)", err)
	}
	return keys, err
}

// trimNewline removes one trailing "\n" or "\r\n".
func trimNewline(b []byte) []byte {
	if b, ok := bytes.CutSuffix(b, []byte("\n")); ok {
		b, _ = bytes.CutSuffix(b, []byte("\r"))
		return b
	}
	return b
}
