package jwe

import "testing"

func TestDuplicateMember(t *testing.T) {
	cases := []struct {
		in   string
		want string // "" when none
	}{
		{`{}`, ""},
		{`{"a":1,"b":2}`, ""},
		{`{"a":1,"a":2}`, "a"},
		{`{"a":"}{,\"a\":","b":1}`, ""},
		{`{"a":1,"\u0061":2}`, "a"},
		{`{"a":{"x":1,"y":{"x":2}},"b":[{"x":1},{"x":2}]}`, ""},
		{`{"a":{"x":1,"x":2}}`, "x"},
		{`{"a":[{"k":1,"k":1}]}`, "k"},
		{`{"a":["x","x"],"b":"x"}`, ""},
		{`{"epk":{"kty":"EC","x":"1"},"x":"2"}`, ""},
		{`{"a\"b":1,"a\"b":2}`, `a"b`},
	}
	for _, c := range cases {
		got, dup := duplicateMember([]byte(c.in))
		if dup != (c.want != "") || got != c.want {
			t.Errorf("%s: got %q %v, want %q", c.in, got, dup, c.want)
		}
	}
}
