package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/bmatcuk/doublestar/v4"
	"go.yaml.in/yaml/v3"
)

// configName is the file that sets recipients and scope for the manifests
// of a directory tree, found by walking up from a manifest.
const configName = ".jwe-encrypt.yaml"

// maxConfigSize caps how much of a configuration file is read.
const maxConfigSize = 1 << 20

// projectConfig is a .jwe-encrypt.yaml file.
type projectConfig struct {
	// Rules are tried in order; the first whose path matches a manifest
	// applies to it.
	Rules []configRule `yaml:"rules"`

	path string // of the file, for messages
	dir  string // the directory it is in: paths are relative to it
}

// configRule maps manifests to recipients and a default scope.
type configRule struct {
	// Path is a glob of manifest paths relative to the file's directory,
	// with "/" separators; "**" matches any number of directories.
	Path       string   `yaml:"path"`
	Recipients []string `yaml:"recipients"`
	Scope      string   `yaml:"scope"`
	Line       int      `yaml:"-"`
}

// findConfig returns the .jwe-encrypt.yaml nearest to dir, walking up to the
// root, or nil when there is none.
func findConfig(dir string) (*projectConfig, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for {
		path := filepath.Join(dir, configName)
		data, err := readFile(path, maxConfigSize)
		switch {
		case err == nil:
			return parseConfig(data, path)
		case !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil, nil
		}
		dir = parent
	}
}

// parseConfig parses a .jwe-encrypt.yaml at path and checks its rules.
func parseConfig(data []byte, path string) (*projectConfig, error) {
	c := &projectConfig{path: path, dir: filepath.Dir(path)}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(c.Rules) == 0 {
		return nil, fmt.Errorf("%s: no rules", path)
	}
	// The lines of the rules, for messages.
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) == nil && len(doc.Content) > 0 {
		if list := ruleList(doc.Content[0]); list != nil {
			for i := range min(len(c.Rules), len(list.Content)) {
				c.Rules[i].Line = list.Content[i].Line
			}
		}
	}
	for i, r := range c.Rules {
		where := fmt.Sprintf("%s:%d: rule %d", path, r.Line, i+1)
		switch {
		case r.Path == "":
			return nil, fmt.Errorf("%s has no path", where)
		case !doublestar.ValidatePattern(r.Path):
			return nil, fmt.Errorf("%s: path %q is not a valid glob", where, r.Path)
		case len(r.Recipients) == 0:
			return nil, fmt.Errorf("%s has no recipients", where)
		case !slices.Contains([]string{"", scopeStrict, scopeNamespace, scopeCluster}, r.Scope):
			return nil, withHint(fmt.Errorf("%s: unknown scope %q", where, r.Scope), "scope is strict, namespace or cluster")
		}
	}
	return c, nil
}

// ruleList returns the "rules" sequence of the top mapping m.
func ruleList(m *yaml.Node) *yaml.Node {
	for i := 0; m.Kind == yaml.MappingNode && i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "rules" && m.Content[i+1].Kind == yaml.SequenceNode {
			return m.Content[i+1]
		}
	}
	return nil
}

// rule returns the first rule that matches the manifest at file, with its
// key file recipients made relative to the working directory; nil when none
// matches.
func (c *projectConfig) rule(file string) (*configRule, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	rel, err := filepath.Rel(c.dir, abs)
	if err != nil {
		return nil, err
	}
	rel = filepath.ToSlash(rel)
	for _, r := range c.Rules {
		if ok, _ := doublestar.Match(r.Path, rel); !ok {
			continue
		}
		out := r
		out.Recipients = nil
		for _, spec := range r.Recipients {
			if !isKeyService(spec) && !isURL(spec) && !filepath.IsAbs(spec) {
				spec = filepath.Join(c.dir, spec)
			}
			out.Recipients = append(out.Recipients, spec)
		}
		return &out, nil
	}
	return nil, nil
}

// configFor returns the rule of the nearest .jwe-encrypt.yaml that applies
// to the manifest at file, the file's path, or nil.
func configFor(file string) (*configRule, string, error) {
	if file == "-" {
		return nil, "", nil
	}
	if _, err := os.Stat(file); err != nil {
		return nil, "", nil // the read reports it
	}
	c, err := findConfig(filepath.Dir(file))
	if err != nil || c == nil {
		return nil, "", err
	}
	r, err := c.rule(file)
	return r, c.path, err
}
