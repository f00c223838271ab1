package azkvtest

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jwe-webhook/jwe-webhook/internal/kms/kmstest"
)

// resource is the audience of Key Vault tokens, as the challenge names it.
const resource = "https://vault.azure.net"

// maxBody caps a request body.
const maxBody = 1 << 20

var b64 = base64.RawURLEncoding

func (s *Server) routes() http.Handler {
	countGetKey := func(c *Calls) { c.GetKey++ }
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", s.openIDConfiguration)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.issueToken)
	mux.HandleFunc("GET /keys/{name}/{$}", s.vault(countGetKey, s.handleGetKey))
	mux.HandleFunc("GET /keys/{name}/{version}", s.vault(countGetKey, s.handleGetKey))
	mux.HandleFunc("GET /keys/{name}/versions", s.vault(countGetKey, s.handleListVersions))
	mux.HandleFunc("POST /keys/{name}/{version}/unwrapkey", s.vault(func(c *Calls) { c.UnwrapKey++ }, s.handleUnwrapKey))
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError writes a Key Vault error body.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

func (s *Server) openIDConfiguration(w http.ResponseWriter, r *http.Request) {
	base := s.URL + "/" + r.PathValue("tenant")
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                 base + "/v2.0",
		"token_endpoint":         base + "/oauth2/v2.0/token",
		"authorization_endpoint": base + "/oauth2/v2.0/authorize",
	})
}

// issueToken is the client-credentials grant with a federated assertion.
func (s *Server) issueToken(w http.ResponseWriter, r *http.Request) {
	refuse := s.rec.Count(func(c *Calls) { c.Token++ }).RefuseToken
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": err.Error()})
		return
	}
	f := r.PostForm
	switch {
	case f.Get("grant_type") != "client_credentials" ||
		f.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type", "error_description": "fake key vault: only client credentials with a federated assertion"})
		return
	case r.PathValue("tenant") != s.TenantID:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "AADSTS90002: Tenant '" + r.PathValue("tenant") + "' not found."})
		return
	case refuse || f.Get("client_id") != s.ClientID || f.Get("client_assertion") != s.FederatedToken:
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client", "error_description": "AADSTS700213: No matching federated identity record found for presented assertion subject."})
		return
	case !slices.Contains(strings.Fields(f.Get("scope")), resource+"/.default"):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_scope", "error_description": fmt.Sprintf("AADSTS70011: The provided value for scope %q is not valid.", f.Get("scope"))})
		return
	}
	tok := rand.Text() + rand.Text()
	s.mu.Lock()
	s.tokens[tok] = true
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": tok})
}

// vault wraps a vault handler: the api-version query, the bearer token
// (else the challenge), the call count and the faults.
func (s *Server) vault(count func(*Calls), h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("api-version") == "" {
			writeError(w, http.StatusBadRequest, "BadParameter", "The api-version query parameter is missing.")
			return
		}
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		valid := ok && s.tokens[tok]
		s.mu.Unlock()
		if !valid {
			s.rec.Count(func(c *Calls) { c.Challenge++ })
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization="%s/%s", resource="%s"`, s.URL, s.TenantID, resource))
			writeError(w, http.StatusUnauthorized, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.")
			return
		}
		f := s.rec.Count(count)
		// Read the body first: only then does the server notice a client
		// that gives up while the call is held.
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
		if err != nil {
			writeError(w, http.StatusBadRequest, "BadParameter", "The request body could not be read.")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if err := kmstest.Hold(r.Context(), f.Delay); err != nil {
			return // the client went away
		}
		if f.Status != 0 {
			writeFault(w, f.Status, r)
			return
		}
		h(w, r)
	}
}

func writeFault(w http.ResponseWriter, status int, r *http.Request) {
	switch status {
	case http.StatusForbidden:
		writeError(w, status, "Forbidden", fmt.Sprintf(
			"Caller is not authorized to perform action on resource. Action: 'Microsoft.KeyVault/vaults/keys/%s/action' Resource: '%s'", r.PathValue("name"), r.URL.Path))
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "0")
		writeError(w, status, "Throttled", "Request was not processed because too many requests were received.")
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "0")
		writeError(w, status, "ServiceUnavailable", "The service is temporarily unavailable.")
	default:
		writeError(w, status, http.StatusText(status), "fake key vault: injected "+http.StatusText(status))
	}
}

// find returns the version of name, the newest when version is empty.
func (s *Server) find(name, version string) (*version, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.keys[name]
	if version == "" && len(vs) > 0 {
		return vs[len(vs)-1], true
	}
	for _, v := range vs {
		if v.id == version {
			return v, true
		}
	}
	return nil, false
}

func (s *Server) handleGetKey(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	v, ok := s.find(name, r.PathValue("version"))
	if !ok {
		writeError(w, http.StatusNotFound, "KeyNotFound", fmt.Sprintf("A key with (name/id) %s was not found in this key vault.", name))
		return
	}
	s.mu.Lock()
	enabled, kty := v.enabled, v.kty
	s.mu.Unlock()
	now := time.Now().Unix()
	writeJSON(w, http.StatusOK, map[string]any{
		"key": map[string]any{
			"kid":     s.URL + "/keys/" + name + "/" + v.id,
			"kty":     kty,
			"key_ops": v.ops,
			"n":       b64.EncodeToString(v.priv.N.Bytes()),
			"e":       b64.EncodeToString(big.NewInt(int64(v.priv.E)).Bytes()),
		},
		"attributes": map[string]any{"enabled": enabled, "created": now, "updated": now, "recoveryLevel": "Recoverable+Purgeable"},
	})
}

func (s *Server) handleUnwrapKey(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	v, ok := s.find(name, r.PathValue("version"))
	if !ok {
		writeError(w, http.StatusNotFound, "KeyNotFound", fmt.Sprintf("A key with (name/id) %s/%s was not found in this key vault.", name, r.PathValue("version")))
		return
	}
	var req struct {
		Alg   string `json:"alg"`
		Value string `json:"value"`
	}
	body, err := io.ReadAll(r.Body)
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	ct, derr := b64.DecodeString(strings.TrimRight(req.Value, "="))
	if err != nil || derr != nil {
		writeError(w, http.StatusBadRequest, "BadParameter", "The request body is not a valid key operation.")
		return
	}
	s.mu.Lock()
	enabled, ops := v.enabled, v.ops
	s.mu.Unlock()
	var h crypto.Hash
	switch req.Alg {
	case "RSA-OAEP-256":
		h = crypto.SHA256
	case "RSA-OAEP":
		h = crypto.SHA1
	}
	switch {
	case !enabled:
		writeError(w, http.StatusForbidden, "Forbidden", "Operation unwrapKey is not allowed on a disabled key.")
		return
	case !slices.Contains(ops, "unwrapKey"):
		writeError(w, http.StatusForbidden, "Forbidden", "Operation unwrapKey is not permitted on this key.")
		return
	case h == 0:
		writeError(w, http.StatusBadRequest, "BadParameter", fmt.Sprintf("Invalid algorithm %q for unwrapKey.", req.Alg))
		return
	}
	plain, err := rsa.DecryptOAEP(h.New(), rand.Reader, v.priv, ct, nil)
	if err != nil {
		writeError(w, http.StatusBadRequest, "BadParameter", "Unwrap key failed: the ciphertext is invalid.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"kid": s.URL + "/keys/" + name + "/" + v.id, "value": b64.EncodeToString(plain)})
}

// handleListVersions lists a key's versions, one to a page so that clients'
// paging is exercised.
func (s *Server) handleListVersions(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s.mu.Lock()
	vs := s.keys[name]
	i := 0
	if skip := r.URL.Query().Get("$skiptoken"); skip != "" {
		fmt.Sscan(skip, &i)
	}
	var page []map[string]any
	var next *string
	if i < len(vs) {
		v := vs[i]
		page = append(page, map[string]any{
			"kid":        s.URL + "/keys/" + name + "/" + v.id,
			"attributes": map[string]any{"enabled": v.enabled},
		})
		if i+1 < len(vs) {
			link := fmt.Sprintf("%s/keys/%s/versions?api-version=%s&$skiptoken=%d", s.URL, name, r.URL.Query().Get("api-version"), i+1)
			next = &link
		}
	}
	s.mu.Unlock()
	if len(vs) == 0 {
		writeError(w, http.StatusNotFound, "KeyNotFound", fmt.Sprintf("A key with (name/id) %s was not found in this key vault.", name))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": page, "nextLink": next})
}
