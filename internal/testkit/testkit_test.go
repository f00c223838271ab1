package testkit_test

import (
	"testing"

	"github.com/jwe-webhook/jwe-webhook/internal/testkit"
)

func TestInCI(t *testing.T) {
	for _, c := range []struct {
		ci   string
		want bool
	}{
		{"", false}, {"false", false}, {"FALSE", false}, {"0", false}, {" false ", false},
		{"true", true}, {"1", true}, {"yes", true}, {"woodpecker", true},
	} {
		t.Setenv("CI", c.ci)
		if got := testkit.InCI(); got != c.want {
			t.Errorf("CI=%q: InCI() = %v, want %v", c.ci, got, c.want)
		}
	}
}

func TestEcho(t *testing.T) {
	in := []byte("-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n-----END KEY-----\n")
	cases := []struct {
		msg, input, want string
	}{
		{`bad key "MIIBOgIBAAJBAKj34GkxFhD9"`, string(in), "MIIBOgIBAAJBAKj34GkxFhD9"},
		{"bad key: line 2 is not base64", string(in), ""},
		{`part "ZXlKaGJHY2lP" is bad`, "eyJhbGci.ZXlKaGJHY2lP.aXY", "ZXlKaGJHY2lP"},
		{"ciphertext (part 4): not base64url", "eyJhbGci.ZXlKaGJHY2lP.aXY", ""},
		{"value hunter22 refused", "hunter22", "hunter22"},
		{"short parts aXY are not looked for", "eyJhbGci.aXY", ""},
	}
	for _, c := range cases {
		if got := testkit.Echo(c.msg, []byte(c.input), testkit.MinEcho); got != c.want {
			t.Errorf("Echo(%q, %q) = %q, want %q", c.msg, c.input, got, c.want)
		}
	}
}
