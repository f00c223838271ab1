package jwe_test

import (
	"testing"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
)

// TestDetectContract pins down the detection contract that the
// MutatingWebhookConfiguration's matchConditions rely on: only JSON's
// whitespace around a value is ignored, and a value that is ours starts, after
// it, with 'e' (a compact serialization whose header starts with '{') or '{'
// (a JSON serialization).
func TestDetectContract(t *testing.T) {
	c := compact(`{"alg":"RSA-OAEP-256","enc":"A256GCM"}`)
	j := jsonJWE(nil)
	for _, tt := range []struct {
		name  string
		value string
		want  bool
	}{
		{"compact", c, true},
		{"json", j, true},
		{"one leading space", " " + c, true},
		{"tabs", "\t\t" + c + "\t", true},
		{"crlf", "\r\n" + c + "\r\n", true},
		{"json with leading whitespace", " \n\t\r" + j, true},
		{"json with trailing newline", j + "\n", true},
		{"vertical tab", "\v" + c, false},
		{"form feed", "\f" + j, false},
		{"no-break space", "\u00a0" + c, false},
		{"next line", "\u0085" + c, false},
		{"byte order mark", "\ufeff" + j, false},
		{"header with leading space", compact(` {"alg":"RSA-OAEP-256","enc":"A256GCM"}`), false},
		{"header with leading newline", compact("\n" + `{"alg":"RSA-OAEP-256","enc":"A256GCM"}`), false},
		{"empty header", "." + c, false},
		{"json pretty-printed", "{\n  \"protected\": \"eyJ9\",\n  \"ciphertext\": \"\"\n}", true},
		{"json first member iv", `{"iv":"","ciphertext":""}`, true},
		{"json first member unknown", `{"Protected":"","ciphertext":""}`, false},
		{"json first member escaped", `{"\u0070rotected":"","ciphertext":""}`, false},
		{"docker config", `{"auths":{"r.example":{"auth":"dTpw"}},"ciphertext":""}`, false},
		{"cloud credentials", `{"type":"service_account","ciphertext":""}`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := jwe.Detect([]byte(tt.value)); got != tt.want {
				t.Errorf("Detect(%q) = %v, want %v", tt.value, got, tt.want)
			}
		})
	}
}
