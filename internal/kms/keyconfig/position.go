package keyconfig

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Every error about the file has the form "FILE:LINE: PATH: message", LINE
// being the line of the field PATH ("keys.yaml:7: keys[1].gcpkms.name: …").
// Parse leaves out "FILE:", which ReadFile adds.

// entryError is err of field in keys[i], as "FILE:LINE: keys[i].FIELD: err"
// (without "FILE:" when cfg was not read from a file). An entry built in
// code has no line, and its error is err alone: it names what it opened.
func (cfg *File) entryError(i int, field string, err error) error {
	k := cfg.Keys[i]
	if k.Line == 0 {
		return err
	}
	prefix := ""
	if cfg.Path != "" {
		prefix = cfg.Path + ":"
	}
	return fmt.Errorf("%s%d: keys[%d].%s: %w", prefix, k.lineOf(field), i, field, err)
}

// lineOf returns the line of field in the entry, or of the nearest enclosing
// field set in the file, or the entry's own line.
func (k *Key) lineOf(field string) int {
	for f := field; f != ""; {
		if l, ok := k.lines[f]; ok {
			return l
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			break
		}
		f = f[:i]
	}
	return k.Line
}

// fieldLines records in lines the line of every field under n, by path.
func fieldLines(n *yaml.Node, prefix string, lines map[string]int) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if prefix != "" {
				p = prefix + "." + p
			}
			lines[p] = n.Content[i].Line
			fieldLines(n.Content[i+1], p, lines)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", prefix, i)
			lines[p] = item.Line
			fieldLines(item, p, lines)
		}
	}
}

// fieldError is a problem with one field of an entry, by its path there.
type fieldError struct {
	field, msg string
}

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

func fieldErr(field, format string, args ...any) error {
	return &fieldError{field: field, msg: fmt.Sprintf(format, args...)}
}

// errorAt places err, an error of validate, on its line: "LINE:
// keys[i].FIELD: message".
func (k *Key) errorAt(i int, err error) error {
	var fe *fieldError
	if errors.As(err, &fe) {
		return fmt.Errorf("%d: keys[%d].%s: %s", k.lineOf(fe.field), i, fe.field, fe.msg)
	}
	return fmt.Errorf("%d: keys[%d]: %w", k.Line, i, err)
}

// checkFields walks n, a node decoded into a value of type t at path, and
// names the first field t does not have, or the first value of the wrong
// kind, with its line. The decoder's own errors name Go types instead
// ("field colour not found in type keyconfig.Key").
func checkFields(n *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		n = n.Content[0]
	}
	if n.Kind == 0 || n.Kind == yaml.AliasNode || n.Tag == "!!null" {
		return nil
	}
	at := func(p string) string {
		if p == "" {
			return "the file"
		}
		return p
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("%d: %s: want a mapping of fields (%s), found %s", n.Line, at(path), strings.Join(yamlFields(t), ", "), kindName(n))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			name := n.Content[i].Value
			p := name
			if path != "" {
				p = path + "." + name
			}
			f, ok := yamlField(t, name)
			if !ok {
				return fmt.Errorf("%d: %s: unknown field; known fields here: %s", n.Content[i].Line, p, strings.Join(yamlFields(t), ", "))
			}
			if err := checkFields(n.Content[i+1], f.Type, p); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return fmt.Errorf("%d: %s: want a list, found %s", n.Line, at(path), kindName(n))
		}
		for i, item := range n.Content {
			if err := checkFields(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	default:
		if n.Kind != yaml.ScalarNode || n.Decode(reflect.New(t).Interface()) != nil {
			want := "a string"
			if t.Kind() == reflect.Bool {
				want = "true or false"
			}
			return fmt.Errorf("%d: %s: want %s, found %s", n.Line, at(path), want, kindName(n))
		}
	}
	return nil
}

// yamlFields returns the YAML names of t's fields.
func yamlFields(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}

func yamlField(t reflect.Type, name string) (reflect.StructField, bool) {
	for f := range t.Fields() {
		if n, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); n == name && n != "-" {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}

// yamlError turns "yaml: line 3: …" into "3: …".
func yamlError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.ReplaceAll(msg, "\n  ", "; ")
	if rest, ok := strings.CutPrefix(msg, "unmarshal errors:; "); ok {
		msg = rest
	}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		return errors.New(rest)
	}
	return errors.New("1: " + msg)
}

// entryNodes returns the nodes of the items under "keys", and the line of
// "keys" (1 when there is none).
func entryNodes(doc *yaml.Node) ([]*yaml.Node, int) {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, 1
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, 1
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "keys" && root.Content[i+1].Kind == yaml.SequenceNode {
			return root.Content[i+1].Content, root.Content[i].Line
		}
	}
	return nil, 1
}
