// Package manifest reads and edits the Secrets in Kubernetes manifest files:
// one or more YAML documents, or JSON. It serves the custodian CLI, which
// encrypts values in place, and its linter.
//
// Edits keep the rest of a file as it was. A document that is not edited is
// written back byte for byte. In an edited YAML document only the lines of the
// entries that change are rewritten, so comments, blank lines, key order and
// quoting stay; when a document is laid out in a way this cannot follow (flow
// style, for one), it is written out whole from its parsed form, which keeps
// key order and most comments. In a JSON document whose edits only replace
// values (Secret.Replace), only those string tokens are rewritten; any other
// edited JSON document is written as JSON with its key order and indentation.
package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// File is a parsed manifest file. Its Secrets may be edited; Bytes returns the
// file with the edits.
type File struct {
	docs []*document
}

// document is one YAML document of a file with the text it came from, or a
// stretch of text that holds no document (comments before the first "---").
type document struct {
	text []byte
	line int        // line of the file that text starts on, from 1
	root *yaml.Node // a yaml.DocumentNode; nil when text holds no document
	json bool       // the document is written in JSON

	secrets []*Secret
	edited  bool
}

// Parse parses a manifest file: YAML documents separated by "---" lines, or
// JSON. It fails only when the text is not YAML; problems in a Secret are
// reported by the Secret (see Secret.Err and Value.Err).
func Parse(data []byte) (*File, error) {
	f := &File{}
	for _, d := range split(data) {
		if err := d.parse(); err != nil {
			return nil, err
		}
		f.docs = append(f.docs, d)
	}
	return f, nil
}

// Secrets returns the v1 Secrets of the file in order, including those in the
// items of a v1 List.
func (f *File) Secrets() []*Secret {
	var out []*Secret
	for _, d := range f.docs {
		out = append(out, d.secrets...)
	}
	return out
}

// Bytes returns the file with the edits made to its Secrets. Without edits it
// returns the bytes Parse was given.
func (f *File) Bytes() ([]byte, error) {
	var b bytes.Buffer
	for _, d := range f.docs {
		if !d.edited {
			b.Write(d.text)
			continue
		}
		out, err := d.render()
		if err != nil {
			return nil, err
		}
		b.Write(out)
	}
	return b.Bytes(), nil
}

// Edited reports whether any Secret of the file was edited.
func (f *File) Edited() bool {
	for _, d := range f.docs {
		if d.edited {
			return true
		}
	}
	return false
}

// split cuts data into documents: a new one starts at each "---" line and
// after each "..." line. YAML forbids both markers at the start of a line
// inside content, so cutting the text there is exact.
func split(data []byte) []*document {
	var docs []*document
	start, startLine := 0, 1
	cut := func(end, line int) {
		if end > start {
			docs = append(docs, &document{text: data[start:end], line: startLine})
		}
		start, startLine = end, line
	}
	line := 1
	for off := 0; off < len(data); line++ {
		n := bytes.IndexByte(data[off:], '\n') + 1
		if n == 0 {
			n = len(data) - off
		}
		l := data[off : off+n]
		if isMarker(l, "---") {
			cut(off, line)
		}
		off += n
		if isMarker(l, "...") {
			cut(off, line+1)
		}
	}
	cut(len(data), line)
	return docs
}

// isMarker reports whether line is the document marker m, alone or followed
// by white space.
func isMarker(line []byte, m string) bool {
	rest, ok := bytes.CutPrefix(line, []byte(m))
	return ok && (len(rest) == 0 || rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\r' || rest[0] == '\n')
}

// parse decodes the document's text. The text is preceded by as many empty
// lines as come before it in the file, so that node positions and error
// messages give the file's line numbers.
func (d *document) parse() error {
	root, err := decode(d.text, d.line)
	if err != nil {
		return err
	}
	d.root = root
	if root == nil {
		return nil
	}
	d.json = isJSON(d.text)
	d.secrets = findSecrets(d)
	return nil
}

func decode(text []byte, line int) (*yaml.Node, error) {
	src := io.MultiReader(strings.NewReader(strings.Repeat("\n", line-1)), bytes.NewReader(text))
	dec := yaml.NewDecoder(src)
	var root yaml.Node
	switch err := dec.Decode(&root); {
	case errors.Is(err, io.EOF):
		return nil, nil
	case err != nil:
		return nil, err
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		// split puts one document in each piece of text.
		return nil, fmt.Errorf("yaml: line %d: more than one document between two \"---\" lines", line)
	}
	if len(root.Content) == 0 {
		return nil, nil
	}
	return &root, nil
}

// isJSON reports whether a document's text is JSON: what follows the
// comments, blank lines and "---" line it may start with is valid JSON.
func isJSON(text []byte) bool {
	rest := text
	for len(rest) > 0 {
		l := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			l = rest[:i+1]
		}
		t := bytes.TrimSpace(l)
		if len(t) > 0 && t[0] != '#' && !bytes.Equal(t, []byte("---")) {
			break
		}
		rest = rest[len(l):]
	}
	return json.Valid(rest)
}
