package manifest

import (
	"bytes"
	"cmp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// splice returns the document's text with its Secrets' edits made line by
// line on the original: a changed entry is rewritten, a moved one deleted and
// written again in its new place with the comments above it, and every other
// line is kept. It returns false when the layout is one it does not follow,
// such as flow style; render then checks what it returns.
func (d *document) splice() ([]byte, bool) {
	orig, err := decode(d.text, d.line)
	if err != nil || orig == nil {
		return nil, false
	}
	t := newText(d.text, d.line)
	var edits []edit
	for _, s := range d.secrets {
		if len(s.ops) == 0 {
			continue
		}
		m := orig.Content[0]
		for _, i := range s.path {
			m = m.Content[i]
		}
		es, ok := t.spliceSecret(m, s.ops)
		if !ok {
			return nil, false
		}
		edits = append(edits, es...)
	}
	return t.apply(edits)
}

// edit replaces lines[start:end] of a text with lines.
type edit struct {
	start, end int
	lines      []string
}

// span is where one entry of a block mapping is written, as indices of
// lines: the comment lines right above its key from head, the key's line at
// start, its value up to end.
type span struct{ head, start, end int }

func (t *text) spliceSecret(m *yaml.Node, ops []op) ([]edit, bool) {
	if !isBlock(m) || len(m.Content) == 0 {
		return nil, false
	}
	var edits []edit
	values := map[string]string{} // the last value set for each key
	var keys []string
	for _, o := range ops {
		if o.namespace || o.replace != "" {
			e, ok := t.insertNamespace(m, o.value)
			if o.replace != "" {
				e, ok = t.replaceValue(m, o)
			}
			if !ok {
				return nil, false
			}
			edits = append(edits, e)
			continue
		}
		if _, ok := values[o.key]; !ok {
			keys = append(keys, o.key)
		}
		values[o.key] = o.value
	}
	if len(keys) == 0 {
		return edits, true
	}
	es, ok := t.spliceValues(m, keys, values)
	return append(edits, es...), ok
}

// insertNamespace writes "namespace: NS" into metadata after name, or first.
func (t *text) insertNamespace(m *yaml.Node, namespace string) (edit, bool) {
	_, md, _ := lookup(m, "metadata")
	if md == nil || !isBlock(md) || len(md.Content) == 0 {
		return edit{}, false
	}
	k, v, _ := lookup(md, "name")
	if k == nil {
		k, v = md.Content[0], md.Content[1]
	}
	sp, ok := t.entry(k, v)
	at := sp.end
	if k.Value != "name" {
		at = sp.head
	}
	return edit{at, at, t.render(str("namespace"), str(namespace), md.Content[0].Column-1)}, ok
}

// replaceValue rewrites the entry o.key of field o.replace with o.value.
func (t *text) replaceValue(m *yaml.Node, o op) (edit, bool) {
	_, f, _ := lookup(m, string(o.replace))
	k, old, _ := lookup(f, o.key)
	if old == nil || !isBlock(f) {
		return edit{}, false
	}
	sp, ok := t.entry(k, old)
	v := str(o.value)
	v.LineComment = lineComment(k, old)
	// Quotes a writer chose stay; those a JSON value needed go.
	if old.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0 && !strings.HasPrefix(old.Value, "{") {
		v.Style = old.Style
	}
	return edit{sp.start, sp.end, t.render(k, v, k.Column-1)}, ok
}

// spliceValues sets stringData[key] to values[key] for each of keys,
// removing key from data.
func (t *text) spliceValues(m *yaml.Node, keys []string, values map[string]string) ([]edit, bool) {
	_, sd, _ := lookup(m, string(StringData))
	target := m.Content[0].Column - 1 + t.unit(m) // where stringData entries go
	if sd != nil && isBlock(sd) && len(sd.Content) > 0 {
		target = sd.Content[0].Column - 1
	}
	p, ok := t.planValues(m, keys, values, target)
	if !ok {
		return nil, false
	}
	return t.placeMoved(m, p)
}

// valuesPlan is what setting values in a Secret's stringData takes: the
// entries of stringData rewritten in place, the lines to add to stringData
// (entries with the comments above them), and the entries of data to delete.
type valuesPlan struct {
	edits   []edit
	moved   []string
	removed []span
}

// planValues plans the setting of each of keys to values[key]: a key already
// in stringData is rewritten there; one in data moves, with its comments, to
// stringData entries indented by target; a new one is added there.
func (t *text) planValues(m *yaml.Node, keys []string, values map[string]string, target int) (valuesPlan, bool) {
	_, data, _ := lookup(m, string(Data))
	_, sd, _ := lookup(m, string(StringData))
	var p valuesPlan
	for _, key := range keys {
		v := str(values[key])
		if k, old, _ := lookup(sd, key); old != nil {
			sp, ok := t.entry(k, old)
			if !ok || !isBlock(sd) {
				return p, false
			}
			v.LineComment = lineComment(k, old)
			p.edits = append(p.edits, edit{sp.start, sp.end, t.render(k, v, k.Column-1)})
			continue
		}
		k, old, _ := lookup(data, key)
		if old == nil {
			p.moved = append(p.moved, t.render(str(key), v, target)...)
			continue
		}
		sp, ok := t.entry(k, old)
		if !ok || !isBlock(data) {
			return p, false
		}
		v.LineComment = lineComment(k, old)
		for _, l := range t.lines[sp.head:sp.start] {
			p.moved = append(p.moved, strings.Repeat(" ", target)+strings.TrimLeft(l, " \t"))
		}
		p.moved = append(p.moved, t.render(k, v, target)...)
		p.removed = append(p.removed, sp)
	}
	return p, true
}

// placeMoved returns p's edits with its moved lines written into stringData:
// after its last entry, under its key when it is empty, in data's place when
// every entry of data moved, else a new stringData after data or at the end
// of the Secret. Then the moved entries of data are deleted, or data whole.
func (t *text) placeMoved(m *yaml.Node, p valuesPlan) ([]edit, bool) {
	dk, data, _ := lookup(m, string(Data))
	sk, sd, _ := lookup(m, string(StringData))
	var dataSpan span
	if data != nil {
		var ok bool
		if dataSpan, ok = t.entry(dk, data); !ok {
			return nil, false
		}
	}
	edits := p.edits
	dataGone := len(p.removed) > 0 && len(p.removed) == len(data.Content)/2
	header := []string{strings.Repeat(" ", m.Content[0].Column-1) + string(StringData) + ":" + t.eol}
	switch {
	case len(p.moved) == 0:
	case sd != nil && isBlock(sd) && len(sd.Content) > 0:
		last := len(sd.Content) - 2
		sp, ok := t.entry(sd.Content[last], sd.Content[last+1])
		if !ok {
			return nil, false
		}
		edits = append(edits, edit{sp.end, sp.end, p.moved})
	case sd != nil && isEmpty(sd):
		sp, ok := t.entry(sk, sd)
		if !ok {
			return nil, false
		}
		edits = append(edits, edit{sp.start, sp.end, append(header, p.moved...)})
	case sd != nil:
		return nil, false
	case dataGone:
		// stringData takes data's place, under data's comments.
		edits = append(edits, edit{dataSpan.start, dataSpan.end, append(header, p.moved...)})
		return edits, true
	case data != nil:
		edits = append(edits, edit{dataSpan.end, dataSpan.end, append(header, p.moved...)})
	default:
		last := len(m.Content) - 2
		sp, ok := t.entry(m.Content[last], m.Content[last+1])
		if !ok {
			return nil, false
		}
		edits = append(edits, edit{sp.end, sp.end, append(header, p.moved...)})
	}
	if dataGone {
		return append(edits, edit{dataSpan.head, dataSpan.end, nil}), true
	}
	for _, sp := range p.removed {
		edits = append(edits, edit{sp.head, sp.end, nil})
	}
	return edits, true
}

// entry returns where the entry k: v of a block mapping is written. Lines
// indented deeper than the key belong to the value; comment lines at the end
// that are not in a literal or folded scalar, and any less indented, belong
// to what follows.
func (t *text) entry(k, v *yaml.Node) (span, bool) {
	start, c := k.Line-t.first, k.Column-1
	if start < 0 || start >= len(t.lines) || indent(t.lines[start]) != c {
		return span{}, false
	}
	end := start + 1
	for end < len(t.lines) && (blank(t.lines[end]) || comment(t.lines[end]) || indent(t.lines[end]) > c) {
		end++
	}
	literal := v.Kind == yaml.ScalarNode && v.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0
	for end > start+1 {
		l := t.lines[end-1]
		if !blank(l) && !(comment(l) && (!literal || indent(l) <= c)) {
			break
		}
		end--
	}
	head := start
	for head > 0 && comment(t.lines[head-1]) && indent(t.lines[head-1]) <= c {
		head--
	}
	return span{head, start, end}, true
}

// render writes the entry k: v as lines indented by col spaces.
func (t *text) render(k, v *yaml.Node, col int) []string {
	key := &yaml.Node{Kind: yaml.ScalarNode, Tag: k.Tag, Value: k.Value, Style: k.Style}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if enc.Encode(&yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{key, v}}) != nil || enc.Close() != nil {
		return nil // render's check finds the entry missing
	}
	pad := strings.Repeat(" ", col)
	var out []string
	for l := range strings.Lines(b.String()) {
		out = append(out, pad+strings.TrimSuffix(l, "\n")+t.eol)
	}
	return out
}

// apply makes the edits, which may not overlap. Of edits at the same line,
// insertions come first, in the order given.
func (t *text) apply(edits []edit) ([]byte, bool) {
	slices.SortStableFunc(edits, func(a, b edit) int {
		return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(a.end, b.end))
	})
	for i := 1; i < len(edits); i++ {
		if edits[i-1].end > edits[i].start {
			return nil, false
		}
	}
	lines := slices.Clone(t.lines)
	for i := len(edits) - 1; i >= 0; i-- {
		e := edits[i]
		lines = slices.Replace(lines, e.start, e.end, e.lines...)
	}
	out := strings.Join(lines, "")
	if t.noEOL {
		out = strings.TrimSuffix(out, t.eol)
	}
	return []byte(out), true
}

func isBlock(n *yaml.Node) bool {
	return n.Kind == yaml.MappingNode && n.Style&yaml.FlowStyle == 0
}

func indent(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) }

func blank(l string) bool { return strings.TrimSpace(l) == "" }

func comment(l string) bool { return strings.HasPrefix(strings.TrimLeft(l, " \t"), "#") }
