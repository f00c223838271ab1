// Package keyconfig reads the key configuration file: which keys the webhook
// holds, in which key service, and for which namespaces.
//
//	keys:
//	  - provider: local
//	    local: {file: /etc/jwe-webhook/keys/cluster.pem}
//	  - provider: gcpkms
//	    gcpkms: {name: projects/p/locations/global/keyRings/r/cryptoKeys/hr}
//	    namespaces: ["hr", "hr-*"]
//	  - provider: vault
//	    vault:
//	      address: https://vault.example:8200
//	      mount: transit
//	      key: payments
//	      auth: {method: kubernetes, role: jwe-webhook}
//	  - provider: awskms
//	    awskms: {arn: arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab}
//	  - provider: azurekv
//	    azurekv: {key: https://hr.vault.azure.net/keys/jwe}
//
// Errors point at the line and field that is wrong.
package keyconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"path"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/jwe-webhook/jwe-webhook/internal/files"
)

// MaxFileSize is the largest key configuration file read.
const MaxFileSize = 1 << 20

// Providers are the key services a key may live in.
var Providers = []string{"local", "gcpkms", "vault", "awskms", "azurekv"}

// File is a parsed key configuration.
type File struct {
	Keys []Key `yaml:"keys"`

	// Path is the file it was read from, for messages; empty for a
	// configuration built in code.
	Path string `yaml:"-"`
}

// Key is one entry of the file.
type Key struct {
	// KID, when set, must equal the key ID the provider reports; it guards
	// against a file that names a different key than its author meant.
	KID      string `yaml:"kid"`
	Provider string `yaml:"provider"`
	// Namespaces limits the key to namespaces matching one of these
	// path.Match globs; empty means every namespace.
	Namespaces []string `yaml:"namespaces"`

	Local   *Local   `yaml:"local"`
	GCPKMS  *GCPKMS  `yaml:"gcpkms"`
	Vault   *Vault   `yaml:"vault"`
	AWSKMS  *AWSKMS  `yaml:"awskms"`
	AzureKV *AzureKV `yaml:"azurekv"`

	// Line is where the entry starts in the file, for messages; 0 for an
	// entry built in code.
	Line int `yaml:"-"`
	// lines holds the line of each field set in the file, by its path in
	// the entry ("gcpkms.name", "namespaces[0]").
	lines map[string]int
}

// Local is a private key file (PEM, JWK or JWK Set); every key in it is held.
type Local struct {
	File string `yaml:"file"`
}

// GCPKMS is a Cloud KMS asymmetric decryption key.
type GCPKMS struct {
	// Name is a crypto key (every version of it) or one key version.
	Name string `yaml:"name"`
	// Endpoint overrides the API endpoint (host:port), e.g. a private
	// service connect address.
	Endpoint string `yaml:"endpoint"`
	// Insecure talks plaintext gRPC without credentials. Only for a
	// loopback endpoint in tests.
	Insecure bool `yaml:"insecure"`
}

// Vault is a transit RSA key.
type Vault struct {
	Address string    `yaml:"address"`
	Mount   string    `yaml:"mount"`
	Key     string    `yaml:"key"`
	Auth    VaultAuth `yaml:"auth"`
	TLS     VaultTLS  `yaml:"tls"`
}

// VaultAuth says how the webhook logs in to Vault.
type VaultAuth struct {
	// Method is "kubernetes" (default) or "token".
	Method string `yaml:"method"`
	// Role is the Kubernetes auth role.
	Role string `yaml:"role"`
	// Mount is the Kubernetes auth mount; default "kubernetes".
	Mount string `yaml:"mount"`
	// ServiceAccountTokenFile defaults to the pod's projected token.
	ServiceAccountTokenFile string `yaml:"serviceAccountTokenFile"`
	// TokenFile holds a Vault token, for method "token".
	TokenFile string `yaml:"tokenFile"`
}

// VaultTLS configures the connection to Vault.
type VaultTLS struct {
	CAFile     string `yaml:"caFile"`
	ServerName string `yaml:"serverName"`
}

// ReadFile reads and validates the key configuration at path.
func ReadFile(path string) (*File, error) {
	data, err := files.Read(path, MaxFileSize)
	if err != nil {
		return nil, err
	}
	return parseFile(path, data)
}

// parseFile is Parse with path before the line numbers of its errors.
func parseFile(path string, data []byte) (*File, error) {
	cfg, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s:%w", path, err)
	}
	cfg.Path = path
	return cfg, nil
}

// Parse reads and validates a key configuration. Errors have the form
// "LINE: PATH: message" ("12: keys[1].gcpkms.name: …"), LINE being the line
// of the field, so that ReadFile can prefix the file's path.
func Parse(data []byte) (*File, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(err)
	}
	if err := checkFields(&doc, reflect.TypeFor[File](), ""); err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var cfg File
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("1: keys: missing; the file is empty, list keys under \"keys:\"")
		}
		return nil, yamlError(err)
	}
	var more yaml.Node
	switch err := dec.Decode(&more); {
	case err == nil:
		return nil, fmt.Errorf("%d: one YAML document expected", more.Line)
	case !errors.Is(err, io.EOF):
		return nil, yamlError(err) // a second document that does not even parse
	}
	entries, keysLine := entryNodes(&doc)
	for i, n := range entries {
		if i < len(cfg.Keys) {
			cfg.Keys[i].Line = n.Line
			cfg.Keys[i].lines = map[string]int{}
			fieldLines(n, "", cfg.Keys[i].lines)
		}
	}
	if len(cfg.Keys) == 0 {
		return nil, fmt.Errorf("%d: keys: no keys; list at least one", keysLine)
	}
	for i := range cfg.Keys {
		if err := cfg.Keys[i].validate(); err != nil {
			return nil, cfg.Keys[i].errorAt(i, err)
		}
	}
	return &cfg, nil
}

func (k *Key) validate() error {
	set := map[string]bool{"local": k.Local != nil, "gcpkms": k.GCPKMS != nil, "vault": k.Vault != nil,
		"awskms": k.AWSKMS != nil, "azurekv": k.AzureKV != nil}
	switch {
	case k.Provider == "":
		return fieldErr("provider", "missing; one of %s", strings.Join(Providers, ", "))
	case !set[k.Provider] && !slices.Contains(Providers, k.Provider):
		return fieldErr("provider", "%q is not one of %s", k.Provider, strings.Join(Providers, ", "))
	case !set[k.Provider]:
		return fieldErr(k.Provider, "missing; provider %q needs a %q block with its settings", k.Provider, k.Provider)
	}
	for _, p := range Providers {
		if set[p] && p != k.Provider {
			return fieldErr(p, "settings for another provider than %q", k.Provider)
		}
	}
	for i, ns := range k.Namespaces {
		if ns == "" {
			return fieldErr(fmt.Sprintf("namespaces[%d]", i), "empty pattern")
		}
		if _, err := path.Match(ns, ""); err != nil {
			return fieldErr(fmt.Sprintf("namespaces[%d]", i), "%q is not a valid glob: %v", ns, err)
		}
	}
	switch k.Provider {
	case "local":
		if k.Local.File == "" {
			return fieldErr("local.file", "missing; the path of a private key file (PEM, JWK or JWK Set)")
		}
	case "gcpkms":
		return k.GCPKMS.validate()
	case "vault":
		return k.Vault.validate()
	case "awskms":
		return k.AWSKMS.validate()
	case "azurekv":
		return k.AzureKV.validate()
	}
	return nil
}

func (g *GCPKMS) validate() error {
	parts := strings.Split(g.Name, "/")
	ok := (len(parts) == 8 || len(parts) == 10) && parts[0] == "projects" && parts[2] == "locations" &&
		parts[4] == "keyRings" && parts[6] == "cryptoKeys" && (len(parts) == 8 || parts[8] == "cryptoKeyVersions")
	for _, p := range parts {
		ok = ok && p != ""
	}
	if !ok {
		return fieldErr("gcpkms.name", "%q is not a crypto key (projects/P/locations/L/keyRings/R/cryptoKeys/K) or key version (…/cryptoKeyVersions/N)", g.Name)
	}
	if g.Insecure && !isLoopback(g.Endpoint) {
		return fieldErr("gcpkms.insecure", "only allowed with a loopback endpoint, not %q", g.Endpoint)
	}
	return nil
}

func (v *Vault) validate() error {
	switch {
	case v.Address == "":
		return fieldErr("vault.address", "missing, e.g. https://vault.vault.svc:8200")
	case !validEndpointURL(v.Address):
		return fieldErr("vault.address", "%q must be an https:// URL (plain http only to loopback)", v.Address)
	case v.Mount == "":
		return fieldErr("vault.mount", "missing; the transit mount path, e.g. transit")
	case v.Key == "":
		return fieldErr("vault.key", "missing; the transit key name")
	case strings.Contains(v.Key, "/"):
		return fieldErr("vault.key", "%q must not contain \"/\"", v.Key)
	}
	switch v.Auth.Method {
	case "", "kubernetes":
		if v.Auth.Role == "" {
			return fieldErr("vault.auth.role", "missing; the Kubernetes auth role to log in with")
		}
	case "token":
		if v.Auth.TokenFile == "" {
			return fieldErr("vault.auth.tokenFile", "missing; a file holding the Vault token")
		}
	default:
		return fieldErr("vault.auth.method", "%q is not kubernetes or token", v.Auth.Method)
	}
	return nil
}

// isLoopback reports whether hostport names a loopback address.
func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
