package awskmstest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/jwe-webhook/jwe-webhook/internal/kms/kmstest"
)

// maxBody caps a request body.
const maxBody = 1 << 20

// account is the account of every key ARN the handler builds from a key ID
// or alias name.
const account = "111122223333"

// ServeHTTP answers one AWS JSON 1.1 request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "TrentService.")
	if r.Method != http.MethodPost || r.URL.Path != "/" || !ok {
		writeError(w, &apiError{http.StatusBadRequest, "UnknownOperationException", "fake aws kms: POST / with X-Amz-Target: TrentService.OPERATION"})
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		writeError(w, &apiError{http.StatusBadRequest, "SerializationException", fmt.Sprintf("Content-Type %q is not application/x-amz-json-1.1", ct)})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		writeError(w, &apiError{http.StatusBadRequest, "SerializationException", "request body unreadable or too large"})
		return
	}
	var count func(*Calls)
	var handle func(region string, body []byte) (any, *apiError)
	switch op {
	case "GetPublicKey":
		count, handle = func(c *Calls) { c.GetPublicKey++ }, s.handleGetPublicKey
	case "Decrypt":
		count, handle = func(c *Calls) { c.Decrypt++ }, s.handleDecrypt
	default:
		writeError(w, &apiError{http.StatusBadRequest, "UnknownOperationException", "fake aws kms: operation " + op + " is not implemented"})
		return
	}
	s.rec.Count(count)
	region, aerr := s.authenticate(r, body)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	f := s.rec.Faults()
	if kmstest.Hold(r.Context(), f.Delay) != nil {
		return // the client went away
	}
	if f.Error != "" {
		writeError(w, faultError(f.Error, op, "arn:aws:kms:"+region+":"+account+":key/*"))
		return
	}
	resp, aerr := handle(region, body)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(resp)
}

// authenticate checks the request's SigV4 signature and returns the region
// it was signed for.
func (s *Server) authenticate(r *http.Request, body []byte) (string, *apiError) {
	sig, err := parseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		return "", &apiError{http.StatusBadRequest, "IncompleteSignature", err.Error()}
	}
	if sig.accessKey != s.AccessKeyID {
		return "", &apiError{http.StatusBadRequest, "UnrecognizedClientException", "The security token included in the request is invalid."}
	}
	if sig.service != "kms" {
		return "", &apiError{http.StatusBadRequest, "InvalidSignatureException", fmt.Sprintf("Credential should be scoped to correct service: 'kms', not %q.", sig.service)}
	}
	if err := verify(r, body, sig, s.SecretAccessKey, time.Now()); err != nil {
		return "", &apiError{http.StatusBadRequest, "InvalidSignatureException", err.Error()}
	}
	return sig.region, nil
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", e.code)
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.code, "message": e.msg})
}

func decode(body []byte, v any) *apiError {
	if err := json.Unmarshal(body, v); err != nil {
		return &apiError{http.StatusBadRequest, "SerializationException", err.Error()}
	}
	return nil
}

func keySpec(priv *rsa.PrivateKey) (string, bool) {
	switch priv.N.BitLen() {
	case 2048, 3072, 4096:
		return fmt.Sprintf("RSA_%d", priv.N.BitLen()), true
	}
	return "", false
}

type getPublicKeyRequest struct {
	KeyId string
}

type getPublicKeyResponse struct {
	KeyId                 string
	PublicKey             []byte
	KeySpec               string
	CustomerMasterKeySpec string
	KeyUsage              string
	EncryptionAlgorithms  []string `json:",omitempty"`
	SigningAlgorithms     []string `json:",omitempty"`
}

func (s *Server) handleGetPublicKey(region string, body []byte) (any, *apiError) {
	var req getPublicKeyRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	k, err := s.usable(req.KeyId, region)
	if err != nil {
		return nil, err
	}
	der, merr := x509.MarshalPKIXPublicKey(&k.priv.PublicKey)
	if merr != nil {
		return nil, &apiError{http.StatusInternalServerError, "KMSInternalException", merr.Error()}
	}
	spec, _ := keySpec(k.priv)
	resp := getPublicKeyResponse{KeyId: k.arn, PublicKey: der, KeySpec: spec, CustomerMasterKeySpec: spec, KeyUsage: k.usage}
	if k.usage == "ENCRYPT_DECRYPT" {
		resp.EncryptionAlgorithms = []string{"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"}
	} else {
		resp.SigningAlgorithms = []string{"RSASSA_PSS_SHA_256", "RSASSA_PKCS1_V1_5_SHA_256"}
	}
	return resp, nil
}

type decryptRequest struct {
	KeyId               string
	CiphertextBlob      []byte
	EncryptionAlgorithm string
}

type decryptResponse struct {
	KeyId               string
	Plaintext           []byte
	EncryptionAlgorithm string
}

func (s *Server) handleDecrypt(region string, body []byte) (any, *apiError) {
	var req decryptRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if req.KeyId == "" {
		return nil, &apiError{http.StatusBadRequest, "ValidationException", "KeyId is required for asymmetric keys"}
	}
	k, err := s.usable(req.KeyId, region)
	if err != nil {
		return nil, err
	}
	var h crypto.Hash
	switch req.EncryptionAlgorithm {
	case "RSAES_OAEP_SHA_256":
		h = crypto.SHA256
	case "RSAES_OAEP_SHA_1":
		h = crypto.SHA1
	}
	if k.usage != "ENCRYPT_DECRYPT" || h == 0 {
		return nil, &apiError{http.StatusBadRequest, "InvalidKeyUsageException",
			fmt.Sprintf("%s key usage is %s and algorithm %q is not valid for it", k.arn, k.usage, req.EncryptionAlgorithm)}
	}
	plaintext, derr := rsa.DecryptOAEP(h.New(), rand.Reader, k.priv, req.CiphertextBlob, nil)
	if derr != nil {
		return nil, &apiError{http.StatusBadRequest, "InvalidCiphertextException", ""}
	}
	return decryptResponse{KeyId: k.arn, Plaintext: plaintext, EncryptionAlgorithm: req.EncryptionAlgorithm}, nil
}

// usable returns the enabled key ref names in region.
func (s *Server) usable(ref, region string) (*key, *apiError) {
	k, err := s.find(ref, region, account)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !k.enabled {
		return nil, &apiError{http.StatusBadRequest, "DisabledException", k.arn + " is disabled."}
	}
	return k, nil
}
