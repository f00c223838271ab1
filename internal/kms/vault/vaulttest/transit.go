package vaulttest

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// errTooOld is Vault's message for a ciphertext below min_decryption_version.
const errTooOld = "ciphertext or signature version is disallowed by policy (too old)"

// rsaBits maps the RSA key types to their sizes.
var rsaBits = map[string]int{"rsa-2048": 2048, "rsa-3072": 3072, "rsa-4096": 4096}

// mount is one transit engine.
type mount struct {
	keys map[string]*key
}

func newMount() *mount { return &mount{keys: map[string]*key{}} }

// key is a transit key with all its versions, archived ones included.
type key struct {
	typ             string
	versions        map[int]*keyVersion
	latest          int
	minDecryption   int
	minEncryption   int
	deletionAllowed bool
}

type keyVersion struct {
	rsa     *rsa.PrivateKey // nil for aes256-gcm96
	created time.Time
}

// EnableTransit mounts a transit engine at path, as POST sys/mounts/<path>
// {"type":"transit"} does.
func (s *Server) EnableTransit(path string) error {
	path = strings.Trim(path, "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.mounts[path]; ok {
		return fmt.Errorf("path is already in use at %s/", path)
	}
	s.mounts[path] = newMount()
	return nil
}

// CreateKey creates the transit key name of type typ on mountPath, as POST
// <mount>/keys/<name> {"type": typ} does; an existing key is left as it is.
func (s *Server) CreateKey(mountPath, name, typ string) error {
	_, err := s.createKey(strings.Trim(mountPath, "/"), name, typ)
	return err
}

// createKey creates a key unless it exists, and returns it. The key material
// is made without the lock held: rsa-4096 takes seconds.
func (s *Server) createKey(mountPath, name, typ string) (*key, error) {
	s.mu.Lock()
	m := s.mounts[mountPath]
	var existing *key
	if m != nil {
		existing = m.keys[name]
	}
	s.mu.Unlock()
	switch {
	case m == nil:
		return nil, fmt.Errorf("no transit mount at %q", mountPath)
	case existing != nil:
		return existing, nil
	}
	if typ == "" {
		typ = "aes256-gcm96" // Vault's default
	}
	k := &key{typ: typ, versions: map[int]*keyVersion{}}
	v, err := newKeyVersion(typ)
	if err != nil {
		return nil, err
	}
	k.versions[1], k.latest, k.minDecryption = v, 1, 1

	s.mu.Lock()
	defer s.mu.Unlock()
	if existing := m.keys[name]; existing != nil {
		return existing, nil
	}
	m.keys[name] = k
	return k, nil
}

func newKeyVersion(typ string) (*keyVersion, error) {
	v := &keyVersion{created: time.Now()}
	switch bits, ok := rsaBits[typ]; {
	case ok:
		priv, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			return nil, err
		}
		v.rsa = priv
	case typ == "aes256-gcm96":
	default:
		return nil, fmt.Errorf("unknown key type %q", typ)
	}
	return v, nil
}

// sys answers POST and DELETE sys/mounts/<path> for transit engines.
func (s *Server) sys(w http.ResponseWriter, r *http.Request, method, p string) {
	path, ok := strings.CutPrefix(p, "sys/mounts/")
	path = strings.Trim(path, "/")
	if !ok || path == "" {
		writeErrors(w, http.StatusNotFound, fmt.Sprintf("no handler for route %q. route entry not found.", p))
		return
	}
	switch method {
	case http.MethodPost:
		var in struct {
			Type string `json:"type"`
		}
		if !readBody(w, r, &in) {
			return
		}
		if in.Type != "transit" {
			writeErrors(w, http.StatusBadRequest, fmt.Sprintf("plugin not found in the catalog: %s", in.Type))
			return
		}
		if err := s.EnableTransit(path); err != nil {
			writeErrors(w, http.StatusBadRequest, err.Error())
			return
		}
	case http.MethodDelete:
		s.mu.Lock()
		delete(s.mounts, path)
		s.mu.Unlock()
	default:
		writeErrors(w, http.StatusMethodNotAllowed)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// transit answers the requests to a transit mount.
func (s *Server) transit(w http.ResponseWriter, r *http.Request, method, p string) {
	mountPath, rest := s.findMount(p)
	if mountPath == "" {
		writeErrors(w, http.StatusNotFound, fmt.Sprintf("no handler for route %q. route entry not found.", p))
		return
	}
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 2 && parts[0] == "keys":
		switch method {
		case http.MethodGet:
			s.readKey(w, mountPath, parts[1])
		case http.MethodPost:
			s.postKey(w, r, mountPath, parts[1])
		case http.MethodDelete:
			s.deleteKey(w, mountPath, parts[1])
		default:
			writeErrors(w, http.StatusMethodNotAllowed)
		}
	case len(parts) == 3 && parts[0] == "keys" && parts[2] == "rotate" && method == http.MethodPost:
		s.rotateKey(w, mountPath, parts[1])
	case len(parts) == 3 && parts[0] == "keys" && parts[2] == "config" && method == http.MethodPost:
		s.configKey(w, r, mountPath, parts[1])
	case len(parts) == 2 && parts[0] == "decrypt" && method == http.MethodPost:
		s.decrypt(w, r, mountPath, parts[1])
	case len(parts) == 2 && parts[0] == "encrypt" && method == http.MethodPost:
		s.encrypt(w, r, mountPath, parts[1])
	default:
		writeErrors(w, http.StatusNotFound, "1 error occurred:\n\t* unsupported path\n\n")
	}
}

// findMount returns the longest transit mount path that p is under, and the
// rest of p.
func (s *Server) findMount(p string) (mountPath, rest string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for m := range s.mounts {
		if r, ok := strings.CutPrefix(p, m+"/"); ok && len(m) > len(mountPath) {
			mountPath, rest = m, r
		}
	}
	return mountPath, rest
}

// lookupKey returns the key name on mountPath, or writes Vault's answer for a
// missing one and returns nil. The caller holds s.mu.
func (s *Server) lookupKey(w http.ResponseWriter, mountPath, name, missing string, status int) *key {
	k := s.mounts[mountPath].keys[name]
	if k == nil {
		if status == http.StatusNotFound {
			writeErrors(w, status)
		} else {
			writeErrors(w, status, missing)
		}
	}
	return k
}
