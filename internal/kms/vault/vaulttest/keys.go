package vaulttest

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

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
