package vault_test

import (
	"os"
	"testing"
)

// TestRealVault runs the cases against the Vault at VAULT_ADDR with the token
// VAULT_TOKEN, which must be allowed to manage transit keys (and ideally to
// mount engines: then the cases use a fresh mount). VAULT_CACERT and
// VAULT_NAMESPACE are honoured. The keys are rsa-4096, as deployments use.
//
//	VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=root go test ./internal/kms/vault/ -run TestRealVault -v
func TestRealVault(t *testing.T) {
	addr, token := os.Getenv("VAULT_ADDR"), os.Getenv("VAULT_TOKEN")
	if addr == "" || token == "" {
		t.Skip("VAULT_ADDR and VAULT_TOKEN not set: skipping the real-Vault tests")
	}
	runCases(t, target{
		addr:      addr,
		token:     token,
		namespace: os.Getenv("VAULT_NAMESPACE"),
		caCert:    os.Getenv("VAULT_CACERT"),
		keyType:   "rsa-4096",
	})
}
