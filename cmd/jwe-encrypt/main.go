// Command jwe-encrypt is the Secrets custodian's tool. It encrypts a secret
// value, or every value of the Secrets in a Kubernetes manifest, to the public
// key of the cluster that will hold it, as a JWE that only jwe-webhook can
// decrypt when the Secret is applied. It also shows what an encrypted value
// is bound to (inspect), finds values left unencrypted or that the cluster
// would refuse (lint), re-encrypts values when keys are rotated, added or
// retired (rekey), opens them with a recovery key (decrypt), exports public
// keys with the webhook's key IDs (pubkey) and prints shell completion.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"

	"golang.org/x/term"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// versionString returns version, or else the module version go install
// recorded.
func versionString() string {
	if bi, ok := debug.ReadBuildInfo(); ok && version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}

const usage = `jwe-encrypt encrypts secrets for jwe-webhook: only the cluster's key can
decrypt them, and only when the Secret is applied there.

Usage:
    jwe-encrypt -r RECIPIENT... [--namespace NS --name NAME] [-o FILE]
    jwe-encrypt -r RECIPIENT... -f MANIFEST [-i | -o FILE]
    jwe-encrypt inspect [FILE]
    jwe-encrypt lint [--strict] [--keys JWKS] [--format text|json] PATH...
    jwe-encrypt rekey [-k KEY]... (--add RECIPIENT | --remove KID | --to RECIPIENT)... [-i | --dry-run] PATH...
    jwe-encrypt decrypt [-k KEY]... [--reveal [-o FILE]] [FILE]
    jwe-encrypt pubkey [--jwks] [-o FILE] RECIPIENT...
    jwe-encrypt completion bash|zsh|fish

Commands:
    (none)     Encrypt one value, or the Secrets of a manifest with -f.
    inspect    Show how values are encrypted and what they are bound to.
    lint       Report Secret values in files that are not encrypted.
    rekey      Re-encrypt values for other keys: rotate, add or retire a key.
    decrypt    Break glass: open values with a recovery key (--reveal).
    pubkey     Export public keys as JWK with the webhook's key IDs.
    completion Print a shell completion script.

Run 'jwe-encrypt -h' for the options of encryption, 'jwe-encrypt COMMAND -h'
for those of a command.
`

func main() {
	c := &cli{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	if fd := int(os.Stdin.Fd()); term.IsTerminal(fd) {
		c.prompt = func(prompt string) ([]byte, error) { return readPassword(fd, prompt) }
	}
	os.Exit(c.main(context.Background(), os.Args[1:]))
}

// readPassword reads a line from the terminal fd without echo. Interrupted,
// it turns echo back on before the program exits.
func readPassword(fd int, prompt string) ([]byte, error) {
	state, err := term.GetState(fd)
	if err != nil {
		return nil, err
	}
	interrupt := make(chan os.Signal, 1)
	signal.Notify(interrupt, os.Interrupt)
	done := make(chan struct{})
	defer func() {
		signal.Stop(interrupt)
		close(done)
	}()
	go func() {
		select {
		case <-interrupt:
			_ = term.Restore(fd, state)
			fmt.Fprintln(os.Stderr)
			os.Exit(130)
		case <-done:
		}
	}()
	fmt.Fprint(os.Stderr, prompt)
	defer fmt.Fprintln(os.Stderr)
	return term.ReadPassword(fd)
}

// cli is one run of the program with what it reads and writes.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// prompt asks for a value on the terminal without echoing it; nil when
	// standard input is not a terminal.
	prompt func(prompt string) ([]byte, error)
}

// main runs the command line args and returns the exit status.
func (c *cli) main(ctx context.Context, args []string) int {
	err := c.run(ctx, args)
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	}
	fmt.Fprintf(c.stderr, "jwe-encrypt: %v\n", err)
	if h, ok := errors.AsType[*hintError](err); ok {
		fmt.Fprintf(c.stderr, "jwe-encrypt: hint: %s\n", h.hint)
	}
	return 1
}

func (c *cli) run(ctx context.Context, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "inspect":
			return c.inspect(args[1:])
		case "lint":
			return c.lint(ctx, args[1:])
		case "rekey":
			return c.rekey(ctx, args[1:])
		case "decrypt":
			return c.decrypt(ctx, args[1:])
		case "pubkey":
			return c.pubkey(ctx, args[1:])
		case "completion":
			return c.completion(args[1:])
		case "help":
			fmt.Fprint(c.stdout, usage)
			return nil
		}
	}
	return c.encrypt(ctx, args)
}

// warnf writes a warning to standard error.
func (c *cli) warnf(format string, args ...any) {
	fmt.Fprintf(c.stderr, "jwe-encrypt: warning: "+format+"\n", args...)
}

// errHelp ends a run that printed the usage text: exit status 0.
var errHelp = errors.New("help requested")

// hintError is an error with a suggestion of what to do about it.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

// withHint adds a hint to err, printed on a line of its own.
func withHint(err error, format string, args ...any) error {
	return &hintError{err: err, hint: fmt.Sprintf(format, args...)}
}

// parseFlags parses args with fs, printing usage on -h. Flags may come after
// arguments ("lint . --strict"); "--" ends the flags. It returns the
// arguments.
func (c *cli) parseFlags(fs *flag.FlagSet, usage string, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var rest []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(c.stdout, usage)
			return nil, errHelp
		}
		if err != nil {
			return nil, withHint(err, "run '%s -h' for the options", fs.Name())
		}
		left := fs.Args()
		if len(left) == 0 {
			return rest, nil
		}
		if used := len(args) - len(left); used > 0 && args[used-1] == "--" {
			return append(rest, left...), nil
		}
		rest, args = append(rest, left[0]), left[1:]
	}
}
