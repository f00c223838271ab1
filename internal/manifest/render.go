package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// render returns an edited document's text: spliced line by line when that
// gives the edited document, else written out whole.
func (d *document) render() ([]byte, error) {
	splice := d.splice
	if d.json {
		splice = d.spliceJSON
	}
	if out, ok := splice(); ok && d.reads(out) {
		return out, nil
	}
	return d.encode()
}

// reads reports whether out parses to the edited document: the check that
// keeps a splice that went wrong from being written.
func (d *document) reads(out []byte) bool {
	got, err := decode(out, d.line)
	if err != nil || got == nil {
		return false
	}
	var a, b any
	return got.Decode(&a) == nil && d.root.Decode(&b) == nil && reflect.DeepEqual(a, b)
}

// encode writes the edited document out whole: as JSON with the original's
// indentation when it was JSON, else as YAML after a "---" line if the
// original had one.
func (d *document) encode() ([]byte, error) {
	t := newText(d.text, d.line)
	var b bytes.Buffer
	if d.json {
		if err := writeJSON(&b, d.root); err != nil {
			return nil, err
		}
		out := b.Bytes()
		if indent := t.jsonIndent(); indent != "" {
			var ib bytes.Buffer
			if err := json.Indent(&ib, out, "", indent); err != nil {
				return nil, fmt.Errorf("write JSON: %w", err)
			}
			out = ib.Bytes()
		}
		return t.finish(t.leading() + string(out) + "\n"), nil
	}
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(t.unit(d.root.Content[0]))
	if err := enc.Encode(d.root); err != nil {
		return nil, fmt.Errorf("write YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("write YAML: %w", err)
	}
	out := b.String()
	if len(t.lines) > 0 && strings.TrimSpace(t.lines[0]) == "---" {
		out = "---\n" + out
	}
	return t.finish(out), nil
}

// writeJSON writes n as compact JSON, keeping the order of mapping keys and
// the text of numbers.
func writeJSON(b *bytes.Buffer, n *yaml.Node) error {
	switch n.Kind {
	case yaml.DocumentNode:
		return writeJSON(b, n.Content[0])
	case yaml.AliasNode:
		return writeJSON(b, n.Alias)
	case yaml.MappingNode, yaml.SequenceNode:
		open, end, step := byte('['), byte(']'), 1
		if n.Kind == yaml.MappingNode {
			open, end, step = '{', '}', 2
		}
		b.WriteByte(open)
		for i := 0; i < len(n.Content); i += step {
			if i > 0 {
				b.WriteByte(',')
			}
			if step == 2 {
				writeJSONString(b, n.Content[i].Value)
				b.WriteByte(':')
			}
			if err := writeJSON(b, n.Content[i+step-1]); err != nil {
				return err
			}
		}
		b.WriteByte(end)
		return nil
	}
	switch n.ShortTag() {
	case "!!null":
		b.WriteString("null")
	case "!!bool":
		v, err := strconv.ParseBool(n.Value)
		if err != nil {
			return fmt.Errorf("line %d: write JSON: %q is not a boolean", n.Line, n.Value)
		}
		b.WriteString(strconv.FormatBool(v))
	case "!!int", "!!float":
		if !json.Valid([]byte(n.Value)) {
			return fmt.Errorf("line %d: write JSON: %q is not a JSON number", n.Line, n.Value)
		}
		b.WriteString(n.Value)
	default:
		writeJSONString(b, n.Value)
	}
	return nil
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	b.Truncate(b.Len() - 1)
}

// text is a document's text as lines, each with its line ending.
type text struct {
	lines []string
	first int    // the file's line number of lines[0]
	eol   string // "\n", or "\r\n" when the first line ends so
	noEOL bool   // the last line had no line ending; one was added
}

func newText(b []byte, first int) *text {
	t := &text{first: first, eol: "\n"}
	for l := range strings.Lines(string(b)) {
		t.lines = append(t.lines, l)
	}
	if len(t.lines) > 0 && strings.HasSuffix(t.lines[0], "\r\n") {
		t.eol = "\r\n"
	}
	if n := len(t.lines); n > 0 && !strings.HasSuffix(t.lines[n-1], "\n") {
		t.lines[n-1] += t.eol
		t.noEOL = true
	}
	return t
}

// finish gives s the document's line endings, and drops the final one when
// the document had none.
func (t *text) finish(s string) []byte {
	if t.eol != "\n" {
		s = strings.ReplaceAll(s, "\n", t.eol)
	}
	if t.noEOL {
		s = strings.TrimSuffix(s, t.eol)
	}
	return []byte(s)
}

// leading returns the lines before the first line of content: comments,
// blank lines and a "---" line.
func (t *text) leading() string {
	var b strings.Builder
	for _, l := range t.lines {
		s := strings.TrimSpace(l)
		if s != "" && s[0] != '#' && s != "---" {
			break
		}
		b.WriteString(strings.TrimRight(l, "\r\n") + "\n")
	}
	return b.String()
}

// jsonIndent returns the white space that indents the second line of a JSON
// document, or "" when it is written on one line.
func (t *text) jsonIndent() string {
	seen := false
	for _, l := range t.lines {
		s := strings.TrimSpace(l)
		if s == "" || s[0] == '#' || s == "---" {
			continue
		}
		if seen {
			return l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		}
		seen = true
	}
	return ""
}

// unit returns the indentation step of a YAML mapping: how much further the
// entries of its first block mapping value are indented than their key.
func (t *text) unit(m *yaml.Node) int {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if v.Kind == yaml.MappingNode && v.Style&yaml.FlowStyle == 0 && len(v.Content) > 0 {
			if u := v.Content[0].Column - k.Column; u > 0 {
				return u
			}
		}
	}
	return 2
}
