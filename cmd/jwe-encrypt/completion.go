package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

const completionUsage = `Usage:
    jwe-encrypt completion bash|zsh|fish

Prints a script that completes jwe-encrypt's commands, options and their
values in the shell. Load it from your shell's start-up file:

    bash:  source <(jwe-encrypt completion bash)          (~/.bashrc)
    zsh:   source <(jwe-encrypt completion zsh)           (~/.zshrc)
    fish:  jwe-encrypt completion fish | source           (~/.config/fish/config.fish)
`

// commandFlags are the options of each command, as completion offers them;
// "" is encryption, without a command. A test checks each against the
// command's usage text.
var commandFlags = map[string][]string{
	"":           {"-r", "--recipient", "--scope", "--namespace", "--name", "-f", "--file", "-i", "--in-place", "-o", "--output", "--from-file", "--from-literal", "--kid", "--enc", "--version"},
	"inspect":    nil,
	"lint":       {"--strict", "--keys", "--format"},
	"rekey":      {"-k", "--key", "--add", "--remove", "--to", "--only-kid", "--older-than-version", "-i", "--in-place", "--dry-run"},
	"decrypt":    {"-k", "--key", "--reveal", "-o", "--output"},
	"pubkey":     {"--jwks", "-o", "--output"},
	"completion": nil,
	"help":       nil,
}

// flagValues are the values completion offers after an option; options not
// listed take a file.
var flagValues = map[string][]string{
	"--scope":  {scopeStrict, scopeNamespace, scopeCluster},
	"--enc":    {"A256GCM", "A128GCM", "A128CBC-HS256", "A256CBC-HS512"},
	"--format": {"text", "json"},
}

func (c *cli) completion(args []string) error {
	fs := flag.NewFlagSet("jwe-encrypt completion", flag.ContinueOnError)
	args, err := c.parseFlags(fs, completionUsage, args)
	if err != nil {
		return err
	}
	if len(args) != 1 {
		return withHint(errors.New("completion needs a shell"), "jwe-encrypt completion bash, zsh or fish")
	}
	switch args[0] {
	case "bash":
		writeBash(c.stdout)
	case "zsh":
		fmt.Fprint(c.stdout, "#compdef jwe-encrypt\n# zsh completion for jwe-encrypt, through bash's.\nautoload -U +X bashcompinit && bashcompinit\n")
		writeBash(c.stdout)
	case "fish":
		writeFish(c.stdout)
	default:
		return withHint(fmt.Errorf("unknown shell %q", args[0]), "jwe-encrypt completion bash, zsh or fish")
	}
	return nil
}

// commands returns the command names, sorted.
func commands() []string {
	var out []string
	for name := range commandFlags {
		if name != "" {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func writeBash(w io.Writer) {
	fmt.Fprintf(w, `# bash completion for jwe-encrypt
_jwe_encrypt() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"
    local cmd="" flags
    if [[ $COMP_CWORD -gt 1 ]]; then
        case "${COMP_WORDS[1]}" in
            %s) cmd="${COMP_WORDS[1]}" ;;
        esac
    fi
    case "$prev" in
`, strings.Join(commands(), "|"))
	for _, f := range slices.Sorted(maps.Keys(flagValues)) {
		fmt.Fprintf(w, "        %s) COMPREPLY=($(compgen -W %q -- \"$cur\")); return ;;\n", f, strings.Join(flagValues[f], " "))
	}
	fmt.Fprint(w, "    esac\n    case \"$cmd\" in\n")
	for _, name := range commands() {
		fmt.Fprintf(w, "        %s) flags=%q ;;\n", name, strings.Join(commandFlags[name], " "))
	}
	fmt.Fprintf(w, `        *) flags=%q ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    elif [[ $COMP_CWORD -eq 1 ]]; then
        COMPREPLY=($(compgen -W %q -- "$cur") $(compgen -f -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}
complete -o default -F _jwe_encrypt jwe-encrypt
`, strings.Join(commandFlags[""], " "), strings.Join(commands(), " "))
}

func writeFish(w io.Writer) {
	fmt.Fprintln(w, "# fish completion for jwe-encrypt")
	fmt.Fprintf(w, "complete -c jwe-encrypt -n __fish_use_subcommand -a %q\n", strings.Join(commands(), " "))
	for _, name := range append([]string{""}, commands()...) {
		cond := "__fish_use_subcommand"
		if name != "" {
			cond = "__fish_seen_subcommand_from " + name
		}
		for _, f := range commandFlags[name] {
			opt := "-l " + strings.TrimPrefix(f, "--")
			if !strings.HasPrefix(f, "--") {
				opt = "-s " + strings.TrimPrefix(f, "-")
			}
			values := ""
			if v, ok := flagValues[f]; ok {
				values = fmt.Sprintf(" -x -a %q", strings.Join(v, " "))
			}
			fmt.Fprintf(w, "complete -c jwe-encrypt -n %q %s%s\n", cond, opt, values)
		}
	}
}
