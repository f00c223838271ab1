package manifest

import (
	"bytes"
	"cmp"
	"slices"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// spliceJSON returns a JSON document's text with each replaced value's string
// token rewritten in place and every other byte kept. It returns false when
// an edit is not a replacement (those are written out whole by encode) or a
// token is not where the parse said.
func (d *document) spliceJSON() ([]byte, bool) {
	orig, err := decode(d.text, d.line)
	if err != nil || orig == nil {
		return nil, false
	}
	starts := lineStarts(d.text)
	type patch struct {
		start, end int
		text       []byte
	}
	var patches []patch
	for _, s := range d.secrets {
		m := orig.Content[0]
		for _, i := range s.path {
			m = m.Content[i]
		}
		for _, o := range s.ops {
			if o.replace == "" {
				return nil, false
			}
			_, f, _ := lookup(m, string(o.replace))
			_, v, _ := lookup(f, o.key)
			if v == nil || v.Style&yaml.DoubleQuotedStyle == 0 {
				return nil, false
			}
			start, ok := offset(d.text, starts, v.Line-d.line, v.Column-1)
			if !ok {
				return nil, false
			}
			end, ok := stringEnd(d.text, start)
			if !ok {
				return nil, false
			}
			var b bytes.Buffer
			writeJSONString(&b, o.value)
			patches = append(patches, patch{start, end, b.Bytes()})
		}
	}
	slices.SortFunc(patches, func(a, b patch) int { return cmp.Compare(a.start, b.start) })
	var out []byte
	at := 0
	for _, p := range patches {
		if p.start < at {
			return nil, false
		}
		out = append(append(out, d.text[at:p.start]...), p.text...)
		at = p.end
	}
	return append(out, d.text[at:]...), true
}

// lineStarts returns the byte offset of the start of each line of b.
func lineStarts(b []byte) []int {
	starts := []int{0}
	for i, c := range b {
		if c == '\n' {
			starts = append(starts, i+1)
		}
	}
	return starts
}

// offset returns the byte offset of column col (in characters, from 0) of
// line (from 0) of b.
func offset(b []byte, starts []int, line, col int) (int, bool) {
	if line < 0 || line >= len(starts) {
		return 0, false
	}
	i := starts[line]
	for ; col > 0 && i < len(b) && b[i] != '\n'; col-- {
		_, n := utf8.DecodeRune(b[i:])
		i += n
	}
	return i, col == 0 && i < len(b) && b[i] == '"'
}

// stringEnd returns the offset just past the JSON string token that starts
// at b[start], a '"'.
func stringEnd(b []byte, start int) (int, bool) {
	for i := start + 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1, true
		case '\n':
			return 0, false
		}
	}
	return 0, false
}
