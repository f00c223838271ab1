package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/local"
)

// maxKeySetSize caps a key set read from a URL.
const maxKeySetSize = 1 << 20

// isURL reports whether spec is an http:// or https:// URL.
func isURL(spec string) bool {
	return strings.HasPrefix(spec, "https://") || strings.HasPrefix(spec, "http://")
}

// keySet reads the public keys of spec: a JWK Set, JWK or PEM file, or a JWK
// Set at an https:// URL such as the webhook's /keys (http:// only on a
// loopback address).
func (s *keyServices) keySet(ctx context.Context, spec string) ([]jwe.PublicKey, error) {
	if !isURL(spec) {
		return local.LoadPublicFile(spec)
	}
	u, err := url.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("key set %q: %w", spec, err)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return nil, withHint(fmt.Errorf("key set %q: plain http is for a loopback address", spec),
			"public keys must come from the cluster itself: use https://, or kubectl port-forward to the webhook's metrics port and read http://127.0.0.1:PORT/keys")
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, spec, nil)
	if err != nil {
		return nil, fmt.Errorf("key set %q: %w", spec, err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("key set: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("key set %q: %s", spec, resp.Status)
	}
	data, err := readAll(resp.Body, spec, maxKeySetSize)
	if err != nil {
		return nil, err
	}
	keys, err := local.ParsePublicKeys(data)
	if err != nil {
		return nil, fmt.Errorf("key set %q: %w", spec, err)
	}
	return keys, nil
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}
