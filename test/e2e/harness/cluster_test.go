package harness

import "testing"

// TestKeySources checks that the log line names the keys the webhook really
// reads: a later --key-config overrides an earlier one, --key-file repeats.
func TestKeySources(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen", "a", "--key-file", "k.pem"}, "--key-file k.pem"},
		{[]string{"--key-file", "a.pem", "--key-file=b.pem"}, "--key-file a.pem --key-file b.pem"},
		{[]string{"--key-config", "default.yaml", "--tls-cert-file", "c", "--key-config", "mine.yaml"}, "--key-config mine.yaml"},
		{[]string{"--key-config", "default.yaml", "-key-config=mine.yaml"}, "--key-config mine.yaml"},
		{[]string{"--key-config", "default.yaml", "--key-config-reload-interval", "100ms"}, "--key-config default.yaml"},
	} {
		if got := keySources(tc.args); got != tc.want {
			t.Errorf("keySources(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}
