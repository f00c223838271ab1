package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/manifest"
)

const rekeyUsage = `Usage:
    jwe-encrypt rekey [-k KEY]... (--add RECIPIENT | --remove KID)... [-i | --dry-run] PATH...
    jwe-encrypt rekey [-k KEY]... --to RECIPIENT... [-i | --dry-run] PATH...

Re-encrypts the JWE values of the Secrets in manifests for another set of
recipients: when a key is rotated or retired, or a cluster is added. Each
value keeps its scope and content encryption, and its place in the file:
comments, key order and every other byte stay. Values that are not
encrypted are left alone (encrypt them with -f).

Each value is opened with a key given with -k, or with the key service its
kid names (a Cloud KMS key version, vault://MOUNT/KEY?version=N, an AWS KMS
key ARN, a Key Vault key version URL) when you may decrypt with it. Plaintext and content keys stay in memory. When any
value fails, no file is written.

Adding recipients to a JSON-serialized value (one with several recipients)
wraps its content key for them; the content is not encrypted again. Any
other change encrypts the content again under a new content key, for every
recipient the value keeps: the public key of each comes from --add or --to,
from a -k key file, or from the key service its kid names.

Recipients:
    --add RECIPIENT      Add a recipient (as -r: a public key file, a
                         JWK Set URL, gcpkms://…, vault://…, awskms://… or
                         azurekv://…).
    --remove KID         Remove the recipient with this kid.
    --to RECIPIENT       Replace all recipients with these.

Values:
    --only-kid KID            Only values with a recipient of this kid.
    --older-than-version N    Only values with a recipient whose key version
                              (Cloud KMS, Vault) is below N.

Keys, input and output:
    -k, --key KEY        A private key file (PEM or JWK) or a key service
                         (gcpkms://…, vault://…, awskms://…, azurekv://…)
                         to open values with.
    -i, --in-place       Rewrite the files (needed for directories and
                         several files); else the one file goes to
                         standard output.
    --dry-run            List what would change; write nothing.

PATH is a manifest file, or a directory searched for *.yaml, *.yml and
*.json (not .git, node_modules, vendor).

Examples:
    Rotate from the retired Cloud KMS version 1 to the newest version:
    $ jwe-encrypt rekey --older-than-version 2 --to gcpkms://projects/p/locations/global/keyRings/k8s/cryptoKeys/secrets -i clusters/prod

    Let the disaster-recovery cluster open every value too:
    $ jwe-encrypt rekey -k ~/prod.pem --add dr.pub.pem -i clusters/prod

    Retire a local key (inspect shows its kid):
    $ jwe-encrypt rekey -k old.pem --add new.pub.pem --remove OLD-KID --dry-run .
`

// progressEvery is how many files rekey reads between progress lines.
const progressEvery = 25

// rekeyOptions are the command line of rekey.
type rekeyOptions struct {
	keys          []string
	add, to       []string
	remove        []string
	onlyKID       string
	olderThan     int
	inPlace, dry  bool
	paths         []string
	olderThanFlag string
}

func (c *cli) parseRekey(args []string) (*rekeyOptions, error) {
	var o rekeyOptions
	fs := flag.NewFlagSet("jwe-encrypt rekey", flag.ContinueOnError)
	appendTo := func(dst *[]string) func(string) error {
		return func(s string) error { *dst = append(*dst, s); return nil }
	}
	fs.Func("k", "", appendTo(&o.keys))
	fs.Func("key", "", appendTo(&o.keys))
	fs.Func("add", "", appendTo(&o.add))
	fs.Func("to", "", appendTo(&o.to))
	fs.Func("remove", "", appendTo(&o.remove))
	fs.StringVar(&o.onlyKID, "only-kid", "", "")
	fs.StringVar(&o.olderThanFlag, "older-than-version", "", "")
	for _, n := range []string{"i", "in-place"} {
		fs.BoolVar(&o.inPlace, n, false, "")
	}
	fs.BoolVar(&o.dry, "dry-run", false, "")
	paths, err := c.parseFlags(fs, rekeyUsage, args)
	if err != nil {
		return nil, err
	}
	o.paths = paths
	return &o, o.check()
}

// check rejects combinations of options that do not make sense.
func (o *rekeyOptions) check() error {
	if o.olderThanFlag != "" {
		n, err := strconv.Atoi(o.olderThanFlag)
		if err != nil || n < 2 {
			return fmt.Errorf("--older-than-version %q is not a version number above 1", o.olderThanFlag)
		}
		o.olderThan = n
	}
	switch {
	case len(o.paths) == 0:
		return withHint(errors.New("rekey needs a path"), "give manifest files or directories: jwe-encrypt rekey … -i clusters/prod")
	case len(o.to) > 0 && (len(o.add) > 0 || len(o.remove) > 0):
		return errors.New("--to gives all recipients; --add and --remove change some: give one or the other")
	case len(o.to) == 0 && len(o.add) == 0 && len(o.remove) == 0:
		return withHint(errors.New("no change of recipients"), "say what to do with --add RECIPIENT, --remove KID or --to RECIPIENT")
	case o.inPlace && o.dry:
		return errors.New("-i writes the files and --dry-run writes nothing; give one")
	case slices.Contains(o.paths, "-"):
		return withHint(errors.New("rekey reads files, not standard input"), "give the manifest's path")
	}
	return nil
}

func (c *cli) rekey(ctx context.Context, args []string) error {
	o, err := c.parseRekey(args)
	if err != nil {
		return err
	}
	ks := &keyServices{getenv: c.getenv, warnf: c.warnf}
	defer ks.close()
	r := &rekeyer{
		cli: c, o: o,
		open: &openers{ks: ks, specs: o.keys},
		add:  &recipients{resolver: ks, specs: append(slices.Clone(o.add), o.to...)},
	}
	var files []*rekeyFile
	for _, p := range o.paths {
		err := walkManifests(p, func(path string) error {
			f, err := r.file(ctx, path)
			if f != nil {
				files = append(files, f)
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("%w; no file was written", err)
		}
	}
	return r.finish(files)
}

// rekeyFile is a manifest with its values re-encrypted, not yet written.
type rekeyFile struct {
	path    string
	out     []byte
	changed int
}

// rekeyer re-encrypts values and counts what it did.
type rekeyer struct {
	cli  *cli
	o    *rekeyOptions
	open *openers
	add  *recipients

	files, values, unchanged int
	removed                  map[string]bool // --remove kids found in a value
}

// file re-encrypts the selected values of the manifest at path. It returns
// nil when the file has no Secret.
func (r *rekeyer) file(ctx context.Context, path string) (*rekeyFile, error) {
	data, err := readFile(path, maxManifestSize)
	if err != nil {
		return nil, err
	}
	f, err := manifest.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	rf := &rekeyFile{path: path}
	for _, s := range f.Secrets() {
		n, err := r.secret(ctx, path, s)
		if err != nil {
			return nil, err
		}
		rf.changed += n
	}
	r.files++
	if rf.changed == 0 {
		return nil, nil
	}
	if rf.out, err = f.Bytes(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if r.files%progressEvery == 0 {
		fmt.Fprintf(r.cli.stderr, "jwe-encrypt: rekey: %s read, %s re-encrypted so far\n", count(r.files, "file"), count(r.values, "value"))
	}
	return rf, nil
}

// secret re-encrypts the selected values of s and returns how many changed.
func (r *rekeyer) secret(ctx context.Context, path string, s *manifest.Secret) (int, error) {
	if s.Err != nil {
		return 0, fmt.Errorf("%s:%d: Secret %s: %w", path, s.Line, s, s.Err)
	}
	if skip, _ := strconv.ParseBool(s.Annotations[skipAnnotation]); skip {
		return 0, nil
	}
	var n int
	for _, v := range s.Values {
		where := fmt.Sprintf("%s:%d: Secret %s: key %q", path, v.Line, s, v.Key)
		if v.Err != nil {
			return 0, fmt.Errorf("%s %v", where, v.Err)
		}
		if !jwe.Detect(v.Bytes) {
			continue
		}
		obj, err := jwe.Parse(v.Bytes)
		if err != nil {
			return 0, fmt.Errorf("%s is not a valid JWE: %w", where, err)
		}
		out, what, err := r.value(ctx, obj)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", where, err)
		}
		if out == "" {
			continue
		}
		if err := s.Replace(v.Key, []byte(out)); err != nil {
			return 0, fmt.Errorf("%s: %w", where, err)
		}
		n++
		r.values++
		if r.o.dry {
			fmt.Fprintf(r.cli.stdout, "%s: %s\n", where, what)
		}
	}
	return n, nil
}

// value returns obj re-encrypted for its new recipients and what was done,
// or "" when obj is not selected or its recipients stay as they are.
func (r *rekeyer) value(ctx context.Context, obj *jwe.Object) (string, string, error) {
	kids := kidsOf(obj)
	if !r.selected(kids) {
		return "", "", nil
	}
	added, err := r.add.publicKeys(ctx)
	if err != nil {
		return "", "", err
	}
	// keep: the recipients that stay; with --to, those it lists.
	var keep []string
	for _, kid := range kids {
		switch {
		case slices.Contains(r.o.remove, kid):
			r.noteRemoved(kid)
		case len(r.o.to) > 0 && !slices.Contains(kidsOfKeys(added), kid):
		default:
			keep = append(keep, kid)
		}
	}
	var fresh []jwe.PublicKey // added keys the value does not have yet
	for _, pk := range added {
		if !slices.Contains(keep, pk.KeyID) {
			fresh = append(fresh, pk)
		}
	}
	if len(fresh) == 0 && len(keep) == len(kids) {
		r.unchanged++
		return "", "", nil
	}
	if len(keep)+len(fresh) == 0 {
		return "", "", withHint(errors.New("no recipient would be left"), "add one with --add RECIPIENT")
	}
	change := fmt.Sprintf("kid %s -> %s", strings.Join(kids, ","), strings.Join(append(slices.Clone(keep), kidsOfKeys(fresh)...), ","))
	if len(keep) == len(kids) {
		out, err := obj.AddRecipients(ctx, r.open, fresh...)
		if err == nil {
			return out, change + " (recipient added; content not re-encrypted)", nil
		}
		if !errors.Is(err, jwe.ErrCannotAdd) {
			return "", "", err
		}
	}
	targets, err := r.keptKeys(ctx, keep, added)
	if err != nil {
		return "", "", err
	}
	out, err := obj.Reencrypt(ctx, r.open, append(targets, fresh...)...)
	if err != nil {
		return "", "", err
	}
	return out, change + " (re-encrypted)", nil
}

// keptKeys returns the public keys of the recipients a value keeps: from
// the keys given, else from -k keys or the key service the kid names.
func (r *rekeyer) keptKeys(ctx context.Context, kids []string, given []jwe.PublicKey) ([]jwe.PublicKey, error) {
	var out []jwe.PublicKey
	for _, kid := range kids {
		if i := slices.IndexFunc(given, func(pk jwe.PublicKey) bool { return pk.KeyID == kid }); i >= 0 {
			out = append(out, given[i])
			continue
		}
		pk, ok, err := r.open.publicKey(ctx, kid)
		if err != nil {
			return nil, fmt.Errorf("public key of kept recipient %q: %w", kid, err)
		}
		if !ok {
			return nil, withHint(fmt.Errorf("recipient %q stays, and its public key is unknown, so the value cannot be encrypted again for it", kid),
				"give it with --add PUBLIC-KEY, its private key with -k, or list every recipient with --to")
		}
		out = append(out, pk)
	}
	return out, nil
}

// selected reports whether a value with these recipients is to be rekeyed.
func (r *rekeyer) selected(kids []string) bool {
	if r.o.onlyKID != "" && !slices.Contains(kids, r.o.onlyKID) {
		return false
	}
	if r.o.olderThan == 0 {
		return true
	}
	return slices.ContainsFunc(kids, func(kid string) bool {
		v, ok := keyVersion(kid)
		return ok && v < r.o.olderThan
	})
}

func (r *rekeyer) noteRemoved(kid string) {
	if r.removed == nil {
		r.removed = map[string]bool{}
	}
	r.removed[kid] = true
}

// finish writes the files, or lists them on a dry run, and sums up.
func (r *rekeyer) finish(files []*rekeyFile) error {
	for _, kid := range r.o.remove {
		if !r.removed[kid] {
			r.cli.warnf("--remove %q: no selected value has this recipient", kid)
		}
	}
	if !r.o.dry && !r.o.inPlace && (len(r.o.paths) > 1 || len(files) > 1 || isDir(r.o.paths[0])) {
		return withHint(errors.New("several files to rekey and -i not given"), "rewrite them with -i, or see what would change with --dry-run; no file was written")
	}
	for _, f := range files {
		switch {
		case r.o.dry:
		case r.o.inPlace:
			if err := r.cli.write(f.path, f.out); err != nil {
				return err
			}
		default:
			if err := r.cli.write("", f.out); err != nil {
				return err
			}
		}
	}
	verb := "re-encrypted"
	if r.o.dry {
		verb = "would re-encrypt"
	}
	fmt.Fprintf(r.cli.stderr, "jwe-encrypt: rekey: %s %s in %s of %s (%d already as asked)\n",
		verb, count(r.values, "value"), count(len(files), "file"), count(r.files, "file"), r.unchanged)
	if !r.o.dry && !r.o.inPlace && len(files) == 0 {
		// Standard output gets the file unchanged, as a filter would.
		data, err := readFile(r.o.paths[0], maxManifestSize)
		if err != nil {
			return err
		}
		return r.cli.write("", data)
	}
	return nil
}
