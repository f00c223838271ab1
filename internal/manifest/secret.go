package manifest

import (
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"

	"go.yaml.in/yaml/v3"
)

// Field is where a Secret keeps a value.
type Field string

// The fields of a Secret that hold values.
const (
	// Data holds base64-encoded bytes.
	Data Field = "data"
	// StringData holds strings; the apiserver moves them to Data, and they
	// take precedence over Data entries of the same key.
	StringData Field = "stringData"
)

// Secret is a v1 Secret of a manifest.
type Secret struct {
	// Namespace, Name and GenerateName are the metadata fields, empty when
	// absent.
	Namespace, Name, GenerateName string
	// Annotations are metadata.annotations with string values.
	Annotations map[string]string
	// Line is the line of the file the Secret starts on.
	Line int
	// Values are the entries of data and stringData in the order of the
	// file, as parsed.
	Values []Value
	// Err says why the Secret cannot be read in full (data is not a
	// mapping, say); nil when it can. Values holds what could be read.
	Err error

	doc  *document
	path []int // Content indices from the document's top node to the Secret
	node *yaml.Node
	ops  []op
}

// Value is one entry of a Secret's data or stringData.
type Value struct {
	Field Field
	Key   string
	// Bytes is the value: decoded from base64 for Data.
	Bytes []byte
	// Line is the line of the file the key is on.
	Line int
	// Err says why the entry cannot be used as it is: it is null, not a
	// string, not base64 (wrapping ErrNotBase64), or in both data and
	// stringData. Bytes is nil then, except in the last case.
	Err error
}

// ErrNotBase64 means a data value is not base64: likely plain text that
// belongs in stringData.
var ErrNotBase64 = errors.New("is not base64 (data holds base64; plain text goes in stringData)")

// op is an edit made to a Secret, replayed on the original text by splice.
type op struct {
	namespace  bool   // set metadata.namespace to value
	replace    Field  // else, when set, set replace[key] to value, as written
	key, value string // else set stringData[key] to value, removing data[key]
}

// String names the Secret for messages: "namespace/name", or only the name
// when it has no namespace.
func (s *Secret) String() string {
	name := s.Name
	switch {
	case name == "" && s.GenerateName != "":
		name = s.GenerateName + "*"
	case name == "":
		name = "(no name)"
	}
	if s.Namespace == "" {
		return name
	}
	return s.Namespace + "/" + name
}

// findSecrets returns the Secrets of a parsed document: the document itself,
// or the items of a List.
func findSecrets(d *document) []*Secret {
	top := d.root.Content[0]
	switch {
	case isKind(top, "Secret"):
		return []*Secret{newSecret(d, top, nil)}
	case isKind(top, "List"):
		_, items, i := lookup(top, "items")
		if items == nil || items.Kind != yaml.SequenceNode {
			return nil
		}
		var out []*Secret
		for j, item := range items.Content {
			if isKind(item, "Secret") {
				out = append(out, newSecret(d, item, []int{i, j}))
			}
		}
		return out
	}
	return nil
}

// isKind reports whether n is a mapping with apiVersion v1 and the kind.
func isKind(n *yaml.Node, kind string) bool {
	return n.Kind == yaml.MappingNode && scalar(n, "apiVersion") == "v1" && scalar(n, "kind") == kind
}

// lookup returns the key and value nodes of the entry key of mapping m, and
// the index of the value in m.Content; nils and -1 when there is none.
func lookup(m *yaml.Node, key string) (k, v *yaml.Node, i int) {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil, nil, -1
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Kind == yaml.ScalarNode && m.Content[i].Value == key {
			return m.Content[i], m.Content[i+1], i + 1
		}
	}
	return nil, nil, -1
}

// scalar returns the string value of the entry key of m, or "".
func scalar(m *yaml.Node, key string) string {
	_, v, _ := lookup(m, key)
	if v == nil || v.Kind != yaml.ScalarNode || isNull(v) {
		return ""
	}
	return v.Value
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// isEmpty reports whether the value of a field holds no entries: it is
// absent, null or an empty mapping.
func isEmpty(n *yaml.Node) bool {
	return n == nil || isNull(n) || n.Kind == yaml.MappingNode && len(n.Content) == 0
}

func newSecret(d *document, m *yaml.Node, path []int) *Secret {
	s := &Secret{doc: d, path: path, node: m, Line: m.Line}
	var errs []error
	if err := checkKeys(m); err != nil {
		errs = append(errs, err)
	}
	_, md, _ := lookup(m, "metadata")
	switch {
	case md == nil || isNull(md):
	case md.Kind != yaml.MappingNode:
		errs = append(errs, fmt.Errorf("line %d: metadata is not a mapping", md.Line))
	default:
		s.Namespace, s.Name, s.GenerateName = scalar(md, "namespace"), scalar(md, "name"), scalar(md, "generateName")
		if _, a, _ := lookup(md, "annotations"); a != nil && a.Kind == yaml.MappingNode {
			s.Annotations = map[string]string{}
			for i := 0; i+1 < len(a.Content); i += 2 {
				s.Annotations[a.Content[i].Value] = a.Content[i+1].Value
			}
		}
	}
	for _, f := range []Field{Data, StringData} {
		if err := s.readField(f); err != nil {
			errs = append(errs, err)
		}
	}
	s.Err = errors.Join(errs...)
	for i, v := range s.Values {
		if v.Field == Data && v.Err == nil && s.has(StringData, v.Key) {
			s.Values[i].Err = errors.New("is in stringData as well, which takes precedence; remove one of them")
		}
	}
	slices.SortStableFunc(s.Values, func(a, b Value) int { return cmp.Compare(a.Line, b.Line) })
	return s
}

// checkKeys refuses a mapping that names a key twice: tools disagree on
// which entry counts.
func checkKeys(m *yaml.Node) error {
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		if k.Kind != yaml.ScalarNode {
			return fmt.Errorf("line %d: a key is not a string", k.Line)
		}
		if seen[k.Value] {
			return fmt.Errorf("line %d: key %q appears twice", k.Line, k.Value)
		}
		seen[k.Value] = true
	}
	return nil
}

func (s *Secret) readField(f Field) error {
	_, m, _ := lookup(s.node, string(f))
	switch {
	case m == nil || isNull(m):
		return nil
	case m.Kind != yaml.MappingNode:
		return fmt.Errorf("line %d: %s is not a mapping", m.Line, f)
	}
	if err := checkKeys(m); err != nil {
		return fmt.Errorf("%s: %w", f, err)
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		val := Value{Field: f, Key: k.Value, Line: k.Line}
		val.Bytes, val.Err = valueOf(f, v)
		s.Values = append(s.Values, val)
	}
	return nil
}

func valueOf(f Field, v *yaml.Node) ([]byte, error) {
	switch {
	case v.Kind == yaml.AliasNode:
		return nil, errors.New("is an alias; write the value out")
	case v.Kind != yaml.ScalarNode:
		return nil, errors.New("is not a string")
	case isNull(v):
		return nil, errors.New("is null; give it a value or remove it")
	case f == StringData:
		return []byte(v.Value), nil
	}
	b, err := base64.StdEncoding.DecodeString(v.Value)
	if err != nil {
		return nil, ErrNotBase64
	}
	return b, nil
}

func (s *Secret) has(f Field, key string) bool {
	_, m, _ := lookup(s.node, string(f))
	_, v, _ := lookup(m, key)
	return v != nil
}

// SetStringData sets stringData[key] to value and removes key from data, so
// that a data entry moves to stringData with the comments above it. A data
// field left empty is removed, and a missing stringData field is added where
// data was, or after it. Values and the other fields of s stay as parsed;
// File.Bytes writes the edit.
func (s *Secret) SetStringData(key, value string) error {
	if s.Err != nil {
		return s.Err
	}
	setStringData(s.node, key, value)
	s.edit(op{key: key, value: value})
	return nil
}

// Replace sets the value of key in the field that holds it, data (encoded in
// base64) or stringData, keeping its place, quoting and comments. A key the
// Secret does not have is an error.
func (s *Secret) Replace(key string, value []byte) error {
	if s.Err != nil {
		return s.Err
	}
	for _, f := range []Field{StringData, Data} {
		_, m, _ := lookup(s.node, string(f))
		_, v, _ := lookup(m, key)
		if v == nil || v.Kind != yaml.ScalarNode {
			continue
		}
		text := string(value)
		if f == Data {
			text = base64.StdEncoding.EncodeToString(value)
		}
		v.Value, v.Tag = text, "!!str"
		if v.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
			v.Style = 0
		}
		s.edit(op{replace: f, key: key, value: text})
		return nil
	}
	return fmt.Errorf("Secret %s has no value %q", s, key)
}

// SetNamespace sets metadata.namespace. A Secret that has another namespace
// is an error.
func (s *Secret) SetNamespace(namespace string) error {
	switch {
	case s.Namespace == namespace:
		return nil
	case s.Namespace != "":
		return fmt.Errorf("Secret %s has namespace %q, not %q", s, s.Namespace, namespace)
	case s.Err != nil:
		return s.Err
	}
	setNamespace(s.node, namespace)
	s.Namespace = namespace
	s.edit(op{namespace: true, value: namespace})
	return nil
}

func (s *Secret) edit(o op) {
	s.ops = append(s.ops, o)
	s.doc.edited = true
}

// str returns a string scalar node; the tag keeps "123" a string.
func str(value string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}
}

// setStringData is SetStringData on the parsed document.
func setStringData(m *yaml.Node, key, value string) {
	dk, data, di := lookup(m, string(Data))
	sk, sd, si := lookup(m, string(StringData))
	created := sd == nil
	switch {
	case created && di < 0:
		sk, sd = str(string(StringData)), &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		m.Content = append(m.Content, sk, sd)
	case created:
		sk, sd = str(string(StringData)), &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		m.Content = insert(m.Content, di+1, sk, sd)
	case isNull(sd):
		sd = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		m.Content[si] = sd
	}
	v := str(value)
	if k, old, i := lookup(sd, key); old != nil {
		v.LineComment = lineComment(k, old)
		sd.Content[i] = v
		return
	}
	k, old, i := lookup(data, key)
	if old == nil {
		sd.Content = append(sd.Content, str(key), v)
		return
	}
	v.LineComment = lineComment(k, old)
	k.LineComment = ""
	sd.Content = append(sd.Content, k, v)
	data.Content = append(data.Content[:i-1], data.Content[i+1:]...)
	if len(data.Content) > 0 {
		return
	}
	if created {
		sk.HeadComment = dk.HeadComment
	}
	_, _, di = lookup(m, string(Data))
	m.Content = append(m.Content[:di-1], m.Content[di+1:]...)
}

// lineComment returns the comment at the end of an entry's line.
func lineComment(k, v *yaml.Node) string {
	if v.LineComment != "" {
		return v.LineComment
	}
	return k.LineComment
}

// setNamespace is SetNamespace on the parsed document: namespace goes after
// name, or first.
func setNamespace(m *yaml.Node, namespace string) {
	_, md, i := lookup(m, "metadata")
	switch {
	case md == nil:
		md = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		_, _, ki := lookup(m, "kind")
		m.Content = insert(m.Content, ki+1, str("metadata"), md)
	case isNull(md):
		md = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		m.Content[i] = md
	}
	_, _, ni := lookup(md, "name")
	md.Content = insert(md.Content, ni+1, str("namespace"), str(namespace))
}

// insert inserts nodes into s before index i; i of 0 or less inserts first.
func insert(s []*yaml.Node, i int, nodes ...*yaml.Node) []*yaml.Node {
	return append(s[:max(i, 0)], append(nodes, s[max(i, 0):]...)...)
}
