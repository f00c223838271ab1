package vaulttest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

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
