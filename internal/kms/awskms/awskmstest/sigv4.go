package awskmstest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// signature is what the Authorization header of a SigV4-signed request says.
type signature struct {
	accessKey, date, region, service string
	signedHeaders                    []string
	signature                        string
}

// parseAuthorization reads "AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/
// SERVICE/aws4_request, SignedHeaders=a;b, Signature=HEX".
func parseAuthorization(h string) (signature, error) {
	var sig signature
	rest, ok := strings.CutPrefix(h, "AWS4-HMAC-SHA256 ")
	if !ok {
		return sig, fmt.Errorf("authorization header is not AWS4-HMAC-SHA256")
	}
	for part := range strings.SplitSeq(rest, ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch name {
		case "Credential":
			scope := strings.Split(value, "/")
			if len(scope) != 5 || scope[4] != "aws4_request" {
				return sig, fmt.Errorf("credential %q is not AKID/DATE/REGION/SERVICE/aws4_request", value)
			}
			sig.accessKey, sig.date, sig.region, sig.service = scope[0], scope[1], scope[2], scope[3]
		case "SignedHeaders":
			sig.signedHeaders = strings.Split(value, ";")
		case "Signature":
			sig.signature = value
		}
	}
	if sig.accessKey == "" || len(sig.signedHeaders) == 0 || sig.signature == "" {
		return sig, fmt.Errorf("authorization header lacks Credential, SignedHeaders or Signature")
	}
	return sig, nil
}

// maxSkew is how far a request's signing time may be from the server's
// clock, as in AWS.
const maxSkew = 15 * time.Minute

// verify checks r's SigV4 signature over body with the secret of the access
// key it names, by signing a copy of the request that carries only the
// headers the client signed, and comparing.
func verify(r *http.Request, body []byte, sig signature, secret string, now time.Time) error {
	signingTime, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return fmt.Errorf("X-Amz-Date %q: %w", r.Header.Get("X-Amz-Date"), err)
	}
	if d := now.Sub(signingTime); d > maxSkew || d < -maxSkew {
		return fmt.Errorf("signature expired: signed at %s, now %s", signingTime.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if sig.date != signingTime.Format("20060102") {
		return fmt.Errorf("credential date %s is not the signing date", sig.date)
	}
	cp, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	cp.Host = r.Host
	cp.ContentLength = int64(len(body))
	for _, h := range sig.signedHeaders {
		if h == "host" || h == "content-length" {
			continue
		}
		if v, ok := r.Header[http.CanonicalHeaderKey(h)]; ok {
			cp.Header[http.CanonicalHeaderKey(h)] = v
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: sig.accessKey, SecretAccessKey: secret, SessionToken: r.Header.Get("X-Amz-Security-Token")}
	if err := v4.NewSigner().SignHTTP(r.Context(), creds, cp, hex.EncodeToString(sum[:]), sig.service, sig.region, signingTime); err != nil {
		return err
	}
	want, err := parseAuthorization(cp.Header.Get("Authorization"))
	if err != nil {
		return err
	}
	if strings.Join(want.signedHeaders, ";") != strings.Join(sig.signedHeaders, ";") {
		return fmt.Errorf("signed headers %q, the request has %q", sig.signedHeaders, want.signedHeaders)
	}
	if want.signature != sig.signature {
		return fmt.Errorf("the request signature we calculated does not match the signature you provided")
	}
	return nil
}
