package vault

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"

	"github.com/hashicorp/vault/api"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms"
)

// Unwrap asks Vault to decrypt w's encrypted content key with the key version
// that w.KeyID names, and returns the content key.
//
// The error wraps jwe.ErrKeyMismatch when w.KeyID is not a version of this
// key or Vault finds that the version does not open the value; ErrVersionTooOld
// when the version is below the key's min_decryption_version;
// ErrPermissionDenied when Vault refuses the token; and the context's error
// when ctx ends first. Errors never hold the ciphertext or the content key.
func (k *Key) Unwrap(ctx context.Context, w jwe.Recipient) ([]byte, error) {
	version, err := k.version(w.KeyID)
	if err != nil {
		return nil, err
	}
	switch w.Algorithm {
	case Algorithm:
	case "RSA-OAEP":
		return nil, errors.New(`algorithm "RSA-OAEP" (SHA-1) is refused: Vault transit decrypts RSA-OAEP with SHA-256 only, so encrypt to a Vault key with "RSA-OAEP-256"`)
	default:
		return nil, fmt.Errorf("algorithm %q is not %q, the only one Vault transit RSA keys decrypt", w.Algorithm, Algorithm)
	}
	if len(w.EncryptedKey) == 0 {
		return nil, errors.New("empty encrypted key")
	}
	body := map[string]any{
		// Vault's ciphertext format: the key version, then the RSA ciphertext
		// in standard base64.
		"ciphertext": "vault:v" + strconv.Itoa(version) + ":" + base64.StdEncoding.EncodeToString(w.EncryptedKey),
		// OAEP is Vault's default; Vault 1.19 added this parameter (and
		// "pkcs1v15"), earlier versions ignore it.
		"padding_scheme": "oaep",
	}
	path := k.mount + "/decrypt/" + k.key
	s, err := k.call(ctx, func(ctx context.Context) (*api.Secret, error) {
		return k.client.Logical().WriteWithContext(ctx, path, body)
	})
	if err != nil {
		return nil, k.decryptError(ctx, version, err)
	}
	var plaintext string
	if s != nil {
		plaintext, _ = s.Data["plaintext"].(string)
	}
	cek, err := base64.StdEncoding.DecodeString(plaintext)
	if err != nil || len(cek) == 0 {
		return nil, errors.New("vault: decrypt answered without a base64 plaintext")
	}
	return cek, nil
}

// decryptError says what a failed decrypt call means.
func (k *Key) decryptError(ctx context.Context, version int, err error) error {
	var re *api.ResponseError
	if ctx.Err() != nil || !errors.As(err, &re) {
		return serviceError(ctx, err)
	}
	msg := strings.Join(re.Errors, "; ")
	switch {
	case strings.Contains(msg, "disallowed by policy (too old)"):
		return fmt.Errorf("vault: version %d of %s: %w", version, k.family, ErrVersionTooOld)
	case re.StatusCode == 400 && (strings.Contains(msg, "encryption key not found") || strings.Contains(msg, "policy not found")):
		return fmt.Errorf("vault: no transit key %q on mount %q: %w", k.key, k.mount, kms.ErrKeyNotFound)
	case re.StatusCode == 400 && strings.Contains(msg, "version is too new"):
		return fmt.Errorf("vault: %s has no version %d: %w: %w", k.family, version, kms.ErrKeyNotFound, jwe.ErrKeyMismatch)
	// Vault answers 400 for a malformed ciphertext or a version it does not
	// have, and (before 1.19 at least) 500 "failed to RSA decrypt the
	// ciphertext" when OAEP fails: a value for another key, or tampered.
	case re.StatusCode == 400 && (strings.Contains(msg, "invalid ciphertext") ||
		strings.Contains(msg, "no such key version") ||
		strings.Contains(msg, "message authentication failed")),
		(re.StatusCode == 400 || re.StatusCode == 500) && strings.Contains(msg, "failed to RSA decrypt"):
		return fmt.Errorf("vault: version %d of %s does not open this value (%s): %w", version, k.family, brief(re.Errors), jwe.ErrKeyMismatch)
	}
	return serviceError(ctx, err)
}

// serviceError turns an error of a Vault call into a short "vault: …" error.
func serviceError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("vault: %w", ctxErr)
	}
	var re *api.ResponseError
	if errors.As(err, &re) {
		if re.StatusCode == 403 {
			return ErrPermissionDenied
		}
		return fmt.Errorf("vault: HTTP %d: %s", re.StatusCode, brief(re.Errors))
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		// The client's own timeout is a timeout like the caller's deadline:
		// callers classify both by context.DeadlineExceeded.
		return fmt.Errorf("vault: request timed out: %w", context.DeadlineExceeded)
	case errors.Is(err, syscall.ECONNREFUSED):
		return errors.New("vault: connection refused")
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET):
		return errors.New("vault: connection closed by the server")
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		// The URL names only the mount and key; the reason is enough.
		return fmt.Errorf("vault: %w", ue.Err)
	}
	return fmt.Errorf("vault: %w", err)
}

// brief returns Vault's error messages on one line of at most 200 bytes.
func brief(errs []string) string {
	s := strings.Join(strings.Fields(strings.Join(errs, "; ")), " ")
	if s == "" {
		return "no error message"
	}
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	return s
}
