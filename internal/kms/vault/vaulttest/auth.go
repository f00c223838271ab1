package vaulttest

import (
	"fmt"
	"net/http"
	"time"
)

// login answers POST auth/<authMount>/login of the Kubernetes auth method:
// {"role", "jwt"} in, a new token in "auth" out.
func (s *Server) login(w http.ResponseWriter, r *http.Request, authMount string) {
	var in struct {
		Role string `json:"role"`
		JWT  string `json:"jwt"`
	}
	if !readBody(w, r, &in) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	roles, ok := s.roles[authMount]
	switch {
	case !ok:
		writeErrors(w, http.StatusNotFound, fmt.Sprintf("no handler for route %q. route entry not found.", "auth/"+authMount+"/login"))
		return
	case in.Role == "":
		writeErrors(w, http.StatusBadRequest, "missing role")
		return
	case in.JWT == "":
		writeErrors(w, http.StatusBadRequest, "missing jwt")
		return
	}
	ro := roles[in.Role]
	if ro == nil {
		writeErrors(w, http.StatusBadRequest, fmt.Sprintf("invalid role name %q", in.Role))
		return
	}
	if in.JWT != ro.jwt {
		writeErrors(w, http.StatusForbidden, "permission denied")
		return
	}
	id := newTokenID()
	t := s.addTokenLocked(id, ro.TokenOptions)
	s.issued = append(s.issued, id)
	auth := authBlock(id, t)
	auth["metadata"] = map[string]string{"role": in.Role, "service_account_name": "jwe-webhook", "service_account_namespace": "jwe-webhook"}
	writeAuth(w, auth)
}

// renewSelf answers POST auth/token/renew-self: the token's lifetime starts
// again at its TTL.
func (s *Server) renewSelf(w http.ResponseWriter, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tokens[id]
	if !t.Renewable {
		writeErrors(w, http.StatusBadRequest, "lease is not renewable")
		return
	}
	if t.TTL > 0 {
		t.expires = time.Now().Add(t.TTL)
	}
	writeAuth(w, authBlock(id, t))
}

// lookupSelf answers GET auth/token/lookup-self.
func (s *Server) lookupSelf(w http.ResponseWriter, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tokens[id]
	data := map[string]any{
		"id":               id,
		"accessor":         t.accessor,
		"creation_time":    t.created.Unix(),
		"creation_ttl":     int(t.TTL.Seconds()),
		"display_name":     "token",
		"explicit_max_ttl": 0,
		"meta":             nil,
		"num_uses":         0,
		"orphan":           false,
		"path":             "auth/token/create",
		"policies":         t.policies(),
		"renewable":        t.Renewable,
		"ttl":              t.remaining(),
		"type":             "service",
	}
	if !t.expires.IsZero() {
		data["expire_time"] = t.expires.UTC().Format(time.RFC3339Nano)
	}
	writeData(w, data)
}

// authBlock is the "auth" of a login or renew-self response.
func authBlock(id string, t *token) map[string]any {
	return map[string]any{
		"client_token":   id,
		"accessor":       t.accessor,
		"policies":       t.policies(),
		"token_policies": t.policies(),
		"metadata":       nil,
		"lease_duration": t.remaining(),
		"renewable":      t.Renewable,
		"entity_id":      "",
		"token_type":     "service",
		"orphan":         true,
	}
}

func (t *token) policies() []string {
	if t.Policies == nil {
		return []string{"default"}
	}
	return t.Policies
}

// remaining returns the seconds the token has left, 0 for never expiring.
func (t *token) remaining() int {
	if t.expires.IsZero() {
		return 0
	}
	return max(1, int(time.Until(t.expires).Round(time.Second).Seconds()))
}
