package vault_test

import (
	"flag"
	"os"
	"testing"
)

// realVault opts in to TestRealVault. A flag, not the environment: a shell
// that has VAULT_ADDR and VAULT_TOKEN set for other work must not have
// transit mounts created and deleted on its Vault by go test ./...
var realVault = flag.Bool("real-vault", false, "run TestRealVault against the Vault at VAULT_ADDR with VAULT_TOKEN (make test-vault)")

// TestRealVault runs the cases against the Vault at VAULT_ADDR with the token
// VAULT_TOKEN, which must be allowed to manage transit keys (and ideally to
// mount engines: then the cases use a fresh mount). VAULT_CACERT and
// VAULT_NAMESPACE are honoured. The keys are rsa-4096, as deployments use.
//
//	VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=root make test-vault
//	VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=root go test ./internal/kms/vault/ -run TestRealVault -v -args -real-vault
func TestRealVault(t *testing.T) {
	if !*realVault {
		t.Skip("the real-Vault tests run only with -real-vault (make test-vault)")
	}
	addr, token := os.Getenv("VAULT_ADDR"), os.Getenv("VAULT_TOKEN")
	if addr == "" || token == "" {
		t.Fatal("-real-vault needs VAULT_ADDR and VAULT_TOKEN")
	}
	runCases(t, target{
		addr:      addr,
		token:     token,
		namespace: os.Getenv("VAULT_NAMESPACE"),
		caCert:    os.Getenv("VAULT_CACERT"),
		keyType:   "rsa-4096",
	})
}
