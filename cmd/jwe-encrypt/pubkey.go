package main

import (
	"context"
	"errors"
	"flag"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
)

const pubkeyUsage = `Usage:
    jwe-encrypt pubkey [--jwks] [-o FILE] RECIPIENT...

Exports the public keys of recipients as a JWK (one key) or a JWK Set
(several, or --jwks), each with the kid the webhook knows it by: a Cloud KMS
key version's name, vault://MOUNT/KEY?version=N, a key file's kid or RFC 7638
thumbprint. Commit it to git: custodians without access to the key service
then encrypt offline with -r FILE, and the webhook still finds the key.
(A PEM exported from the key service would get a thumbprint as kid, which
a key held by a key service does not answer to.)

RECIPIENT is as for -r: a public key file, a JWK Set URL, gcpkms://… or
vault://….

Options:
    --jwks             Write a JWK Set even for one key.
    -o, --output FILE  Write to FILE instead of standard output.

Examples:
    $ jwe-encrypt pubkey gcpkms://projects/p/locations/global/keyRings/k8s/cryptoKeys/secrets -o clusters/prod/key.jwk.json
    $ jwe-encrypt -r clusters/prod/key.jwk.json --namespace hr --name db
`

func (c *cli) pubkey(ctx context.Context, args []string) error {
	var set bool
	var output string
	fs := flag.NewFlagSet("jwe-encrypt pubkey", flag.ContinueOnError)
	fs.BoolVar(&set, "jwks", false, "")
	for _, n := range []string{"o", "output"} {
		fs.StringVar(&output, n, "", "")
	}
	specs, err := c.parseFlags(fs, pubkeyUsage, args)
	if err != nil {
		return err
	}
	if len(specs) == 0 {
		return withHint(errors.New("pubkey needs a recipient"), "name the key: jwe-encrypt pubkey gcpkms://… (or vault://…, or a key file)")
	}
	ks := &keyServices{getenv: c.getenv, warnf: c.warnf}
	defer ks.close()
	keys, err := (&recipients{resolver: ks, specs: specs}).publicKeys(ctx)
	if err != nil {
		return err
	}
	var out []byte
	if len(keys) == 1 && !set {
		out, err = jwe.MarshalJWK(keys[0])
	} else {
		out, err = jwe.MarshalJWKS(keys...)
	}
	if err != nil {
		return err
	}
	return c.write(output, append(out, '\n'))
}
