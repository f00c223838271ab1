package vaulttest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"strconv"
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

// readKey answers GET <mount>/keys/<name>. Like Vault, it lists only the
// versions from min_decryption_version on.
func (s *Server) readKey(w http.ResponseWriter, mountPath, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.lookupKey(w, mountPath, name, "", http.StatusNotFound)
	if k == nil {
		return
	}
	writeData(w, k.info(name))
}

func (k *key) info(name string) map[string]any {
	_, isRSA := rsaBits[k.typ]
	versions := map[string]any{}
	for n := k.minDecryption; n <= k.latest; n++ {
		v := k.versions[n]
		if !isRSA {
			versions[strconv.Itoa(n)] = v.created.Unix()
			continue
		}
		der, _ := x509.MarshalPKIXPublicKey(&v.rsa.PublicKey)
		versions[strconv.Itoa(n)] = map[string]any{
			"creation_time":     v.created.UTC().Format(time.RFC3339Nano),
			"name":              k.typ,
			"public_key":        string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
			"certificate_chain": "",
		}
	}
	return map[string]any{
		"name":                   name,
		"type":                   k.typ,
		"keys":                   versions,
		"latest_version":         k.latest,
		"min_available_version":  0,
		"min_decryption_version": k.minDecryption,
		"min_encryption_version": k.minEncryption,
		"deletion_allowed":       k.deletionAllowed,
		"derived":                false,
		"exportable":             false,
		"allow_plaintext_backup": false,
		"auto_rotate_period":     0,
		"imported_key":           false,
		"supports_encryption":    true,
		"supports_decryption":    true,
		"supports_derivation":    !isRSA,
		"supports_signing":       isRSA,
	}
}

// postKey answers POST <mount>/keys/<name>: it creates the key unless it
// exists and answers with the key's details.
func (s *Server) postKey(w http.ResponseWriter, r *http.Request, mountPath, name string) {
	var in struct {
		Type string `json:"type"`
	}
	if !readBody(w, r, &in) {
		return
	}
	k, err := s.createKey(mountPath, name, in.Type)
	if err != nil {
		writeErrors(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	writeData(w, k.info(name))
}

// deleteKey answers DELETE <mount>/keys/<name>.
func (s *Server) deleteKey(w http.ResponseWriter, mountPath, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.mounts[mountPath].keys[name]
	if k != nil && !k.deletionAllowed {
		writeErrors(w, http.StatusBadRequest, "deletion is not allowed for this key")
		return
	}
	delete(s.mounts[mountPath].keys, name)
	w.WriteHeader(http.StatusNoContent)
}

// rotateKey answers POST <mount>/keys/<name>/rotate.
func (s *Server) rotateKey(w http.ResponseWriter, mountPath, name string) {
	s.mu.Lock()
	k := s.lookupKey(w, mountPath, name, "no such key", http.StatusBadRequest)
	s.mu.Unlock()
	if k == nil {
		return
	}
	v, err := newKeyVersion(k.typ)
	if err != nil {
		writeErrors(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k.latest++
	k.versions[k.latest] = v
	writeData(w, k.info(name))
}

// configKey answers POST <mount>/keys/<name>/config.
func (s *Server) configKey(w http.ResponseWriter, r *http.Request, mountPath, name string) {
	var in struct {
		MinDecryptionVersion *int  `json:"min_decryption_version"`
		MinEncryptionVersion *int  `json:"min_encryption_version"`
		DeletionAllowed      *bool `json:"deletion_allowed"`
	}
	if !readBody(w, r, &in) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.lookupKey(w, mountPath, name, "no such key", http.StatusBadRequest)
	if k == nil {
		return
	}
	minDec, minEnc := k.minDecryption, k.minEncryption
	if v := in.MinDecryptionVersion; v != nil && *v > 0 {
		minDec = *v
	}
	if v := in.MinEncryptionVersion; v != nil {
		minEnc = *v
	}
	switch {
	case minDec > k.latest:
		writeErrors(w, http.StatusBadRequest, fmt.Sprintf("cannot set min decryption version of %d, latest key version is %d", minDec, k.latest))
		return
	case minEnc < 0 || minEnc > k.latest:
		writeErrors(w, http.StatusBadRequest, fmt.Sprintf("cannot set min encryption version of %d, latest key version is %d", minEnc, k.latest))
		return
	case minEnc > 0 && minEnc < minDec:
		writeErrors(w, http.StatusBadRequest, "cannot set min encryption/decryption values; min encryption version must be greater than or equal to min decryption version")
		return
	}
	k.minDecryption, k.minEncryption = minDec, minEnc
	if in.DeletionAllowed != nil {
		k.deletionAllowed = *in.DeletionAllowed
	}
	writeData(w, k.info(name))
}

// encrypt answers POST <mount>/encrypt/<name> for RSA keys: RSA-OAEP with
// SHA-256 and an empty label, as Vault does.
func (s *Server) encrypt(w http.ResponseWriter, r *http.Request, mountPath, name string) {
	var in struct {
		Plaintext  string `json:"plaintext"`
		KeyVersion int    `json:"key_version"`
	}
	if !readBody(w, r, &in) {
		return
	}
	plaintext, err := base64.StdEncoding.DecodeString(in.Plaintext)
	if err != nil {
		writeErrors(w, http.StatusBadRequest, "failed to base64-decode plaintext")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.lookupKey(w, mountPath, name, "encryption key not found", http.StatusBadRequest)
	if k == nil {
		return
	}
	ver := in.KeyVersion
	switch {
	case ver == 0:
		ver = k.latest
	case ver > k.latest:
		writeErrors(w, http.StatusBadRequest, "requested version for encryption is higher than the latest key version")
		return
	case ver < k.minEncryption || ver < k.minDecryption:
		writeErrors(w, http.StatusBadRequest, "requested version for encryption is less than the minimum encryption key version")
		return
	}
	v := k.versions[ver]
	if v.rsa == nil {
		writeErrors(w, http.StatusBadRequest, "this stand-in encrypts with RSA keys only")
		return
	}
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &v.rsa.PublicKey, plaintext, nil)
	if err != nil {
		writeErrors(w, http.StatusInternalServerError, "failed to RSA encrypt the plaintext: "+err.Error())
		return
	}
	writeData(w, map[string]any{
		"ciphertext":  "vault:v" + strconv.Itoa(ver) + ":" + base64.StdEncoding.EncodeToString(ct),
		"key_version": ver,
	})
}

// decrypt answers POST <mount>/decrypt/<name>: it parses "vault:v<N>:<base64>"
// and decrypts with version N, checking versions and reporting failures with
// the messages and status codes Vault uses.
func (s *Server) decrypt(w http.ResponseWriter, r *http.Request, mountPath, name string) {
	var in struct {
		Ciphertext    string `json:"ciphertext"`
		PaddingScheme string `json:"padding_scheme"`
	}
	if !readBody(w, r, &in) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.decrypts = append(s.decrypts, DecryptRequest{Mount: mountPath, Key: name, Ciphertext: in.Ciphertext, PaddingScheme: in.PaddingScheme})
	if in.Ciphertext == "" {
		writeErrors(w, http.StatusBadRequest, "missing ciphertext to decrypt")
		return
	}
	k := s.lookupKey(w, mountPath, name, "encryption key not found", http.StatusBadRequest)
	if k == nil {
		return
	}
	plaintext, status, msg := k.decrypt(in.Ciphertext, in.PaddingScheme)
	if status != http.StatusOK {
		writeErrors(w, status, msg)
		return
	}
	writeData(w, map[string]any{"plaintext": base64.StdEncoding.EncodeToString(plaintext)})
}

// decrypt returns the plaintext of ciphertext, or the status and message of
// Vault's refusal.
func (k *key) decrypt(ciphertext, padding string) ([]byte, int, string) {
	rest, ok := strings.CutPrefix(ciphertext, "vault:v")
	if !ok {
		return nil, http.StatusBadRequest, "invalid ciphertext: no prefix"
	}
	verText, b64, ok := strings.Cut(rest, ":")
	if !ok {
		return nil, http.StatusBadRequest, "invalid ciphertext: wrong number of fields"
	}
	ver, err := strconv.Atoi(verText)
	if err != nil {
		return nil, http.StatusBadRequest, "invalid ciphertext: version number could not be decoded"
	}
	if ver == 0 {
		ver = 1 // Vault's compatibility with keys that started at 0
	}
	switch {
	case ver > k.latest:
		return nil, http.StatusBadRequest, "invalid ciphertext: version is too new"
	case ver < k.minDecryption:
		return nil, http.StatusBadRequest, errTooOld
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, http.StatusBadRequest, "invalid ciphertext: could not decode base64"
	}
	v := k.versions[ver]
	if v.rsa == nil {
		return nil, http.StatusBadRequest, "cipher: message authentication failed"
	}
	var plaintext []byte
	switch padding {
	case "", "oaep":
		plaintext, err = rsa.DecryptOAEP(sha256.New(), nil, v.rsa, raw, nil)
	case "pkcs1v15":
		plaintext, err = rsa.DecryptPKCS1v15(nil, v.rsa, raw)
	default:
		return nil, http.StatusBadRequest, fmt.Sprintf("unsupported padding scheme %q", padding)
	}
	if err != nil {
		return nil, http.StatusInternalServerError, "1 error occurred:\n\t* failed to RSA decrypt the ciphertext: " + err.Error() + "\n\n"
	}
	return plaintext, http.StatusOK, ""
}
