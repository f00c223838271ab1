package keyconfig

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/kms/apiv1/kmspb"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/gcpkms"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/gcpkms/gcpkmstest"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/local"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/vault"
	"github.com/jwe-webhook/jwe-webhook/internal/kms/vault/vaulttest"
)

const gcpVersion = "projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1"

// services starts the Cloud KMS and Vault fakes with one key each and
// returns a configuration naming them and a local key.
func services(t *testing.T) (yaml string, gcp *gcpkmstest.Server, v *vaulttest.Server) {
	t.Helper()
	gcp = gcpkmstest.Start(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if err := gcp.AddVersion(gcpVersion, kmspb.CryptoKeyVersion_RSA_DECRYPT_OAEP_2048_SHA256, rsaKey); err != nil {
		t.Fatal(err)
	}
	v = vaulttest.New(vaulttest.Options{})
	t.Cleanup(v.Close)
	if err := v.CreateKey("transit", "payments", "rsa-2048"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(v.RootToken), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml = fmt.Sprintf(`keys:
  - provider: local
    local: {file: %s}
    namespaces: [team-*]
  - provider: gcpkms
    gcpkms: {name: %s, endpoint: %q, insecure: true}
  - provider: vault
    vault:
      address: %s
      mount: transit
      key: payments
      auth: {method: token, tokenFile: %s}
`, filepath.Join("testdata", "ec-p256.pem"), strings.TrimSuffix(gcpVersion, "/cryptoKeyVersions/1"), gcp.Addr(), v.URL, tokenFile)
	return yaml, gcp, v
}

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// unwrapper adapts a kms unwrap function to jwe.KeyUnwrapper for one namespace.
type unwrapper struct {
	ns string
	f  func(context.Context, string, jwe.Recipient) ([]byte, error)
}

func (u unwrapper) Unwrap(ctx context.Context, r jwe.Recipient) ([]byte, error) {
	return u.f(ctx, u.ns, r)
}

// publicKeyer is a key service key that publishes its public key.
type publicKeyer interface {
	PublicKey(ctx context.Context) (jwe.PublicKey, error)
}

// roundTrip encrypts to pk and decrypts through f in namespace ns, as many
// times as asked (once when times is 0).
func roundTrip(t *testing.T, pk jwe.PublicKey, ns string, f func(context.Context, string, jwe.Recipient) ([]byte, error), times ...int) error {
	t.Helper()
	out, err := jwe.Encrypt([]byte("s3cret"), jwe.Scope{}, "", pk)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := jwe.Parse([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	n := 1
	if len(times) > 0 {
		n = times[0]
	}
	for range n {
		pt, _, err := obj.Decrypt(context.Background(), unwrapper{ns, f})
		if err != nil {
			return err
		}
		if string(pt) != "s3cret" {
			t.Fatalf("got %q", pt)
		}
	}
	return nil
}

func TestBuildEveryProvider(t *testing.T) {
	yaml, gcp, v := services(t)
	cfg, err := Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	cache := kms.NewCache(100, time.Hour, time.Minute)
	keys, err := Build(context.Background(), cfg, Options{Keyring: kms.Options{Cache: cache, Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()

	localKeys, err := local.LoadFile(filepath.Join("testdata", "ec-p256.pem"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{localKeys[0].KeyID(), strings.TrimSuffix(gcpVersion, "/cryptoKeyVersions/1"), "vault://transit/payments"}
	if got := keys.KeyIDs(); fmt.Sprint(got) != fmt.Sprint(sorted(want)) {
		t.Fatalf("kids %q, want %q", got, sorted(want))
	}

	ctx := context.Background()
	pubs := map[string]jwe.PublicKey{"local": {Key: localKeys[0].Public(), KeyID: localKeys[0].KeyID()}}
	for name, src := range map[string]publicKeyer{"gcpkms": mustGCPKey(t, gcp), "vault": mustVaultKey(t, v)} {
		pk, err := src.PublicKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pubs[name] = pk
	}
	for name, pk := range pubs {
		if err := roundTrip(t, pk, "team-a", keys.Unwrap, 2); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if err := roundTrip(t, pubs["local"], "prod", keys.Unwrap); !errors.Is(err, kms.ErrNamespaceNotAllowed) {
		t.Fatalf("namespaces from the file not applied: %v", err)
	}
	if s := cache.Stats(); s.Misses != 3 || s.Hits != 3 {
		t.Fatalf("cache in front of every key: %+v", s)
	}
	// The key set the webhook publishes: each provider's public keys.
	published, err := keys.PublicKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, pk := range published {
		kids = append(kids, pk.KeyID)
	}
	for name, pk := range pubs {
		if !slices.Contains(kids, pk.KeyID) {
			t.Errorf("%s key %q not among the public keys %q", name, pk.KeyID, kids)
		}
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

func TestBuildErrorsNameTheEntry(t *testing.T) {
	yaml, _, _ := services(t)
	dup := yaml + "  - provider: local\n    local: {file: testdata/ec-p256.pem}\n"
	cases := map[string]struct{ yaml, want string }{
		"missing local file": {"keys:\n  - provider: local\n    local:\n      file: testdata/nope.pem\n", `keys.yaml:4: keys[0].local.file: key file "testdata/nope.pem"`},
		"kid not in file":    {"keys:\n  - provider: local\n    kid: abc\n    local: {file: testdata/ec-p256.pem}\n", `keys.yaml:3: keys[0].kid: kid "abc" is not the key's`},
		"vault CA file missing": {"keys:\n  - provider: vault\n    vault: {address: \"https://127.0.0.1:1\", mount: transit, key: k, tls: {caFile: testdata/nope.pem}, auth: {method: token, tokenFile: testdata/ec-p256.pem}}\n",
			`keys.yaml:3: keys[0].vault: vault config: CA file "testdata/nope.pem"`},
		"same key twice": {dup, fmt.Sprintf("keys.yaml:%d: keys[3].local.file: key %q is configured twice, also by keys[0] on line 2", strings.Count(dup, "\n"), localPublicKey(t, "testdata/ec-p256.pem").KeyID)},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			cfg, err := Parse([]byte(c.yaml))
			if err != nil {
				t.Fatal(err)
			}
			cfg.Path = "keys.yaml"
			_, err = Build(context.Background(), cfg, Options{})
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}

	// Keys built in code (--key-file) have no file and no line: the error
	// names the key file alone.
	cfg := &File{Keys: []Key{{Provider: "local", Local: &Local{File: "testdata/nope.pem"}}}}
	if _, err := Build(context.Background(), cfg, Options{}); err == nil || !strings.HasPrefix(err.Error(), `key file "testdata/nope.pem": `) {
		t.Fatalf("got %v", err)
	}
}

func TestSourceReload(t *testing.T) {
	a := "keys:\n  - provider: local\n    local: {file: testdata/ec-p256.pem}\n"
	b := "keys:\n  - provider: local\n    local: {file: testdata/ec-p256-other.pem}\n"
	path := writeConfig(t, a)
	ctx := context.Background()
	src := openSource(t, path, Options{})
	pa, pb := localPublicKey(t, "testdata/ec-p256.pem"), localPublicKey(t, "testdata/ec-p256-other.pem")

	if swapped, err := src.Reload(ctx); swapped || err != nil {
		t.Fatalf("unchanged file: swapped %v, %v", swapped, err)
	}
	if err := os.WriteFile(path, []byte(b), 0o600); err != nil {
		t.Fatal(err)
	}
	if swapped, err := src.Reload(ctx); !swapped || err != nil {
		t.Fatalf("changed file: swapped %v, %v", swapped, err)
	}
	if roundTrip(t, pb, "ns", src.Unwrap) != nil || roundTrip(t, pa, "ns", src.Unwrap) == nil {
		t.Fatal("the new keys are not the ones in use")
	}

	if err := os.WriteFile(path, []byte("keys:\n  - provider: local\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Reload(ctx); err == nil || src.Err() == nil || !strings.Contains(src.Err().Error(), path+":2:") {
		t.Fatalf("a broken file must be reported: %v / %v", err, src.Err())
	}
	if roundTrip(t, pb, "ns", src.Unwrap) != nil {
		t.Fatal("a broken file must leave the last good keys in use")
	}
	if err := os.WriteFile(path, []byte(a), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Reload(ctx); err != nil || src.Err() != nil {
		t.Fatalf("fixed file: %v", err)
	}
	if roundTrip(t, pa, "ns", src.Unwrap) != nil {
		t.Fatal("fixed file not in use")
	}
}

// localPublicKey returns the public half of the one key in a local key file.
func localPublicKey(t *testing.T, path string) jwe.PublicKey {
	t.Helper()
	ks, err := local.LoadFile(path)
	if err != nil || len(ks) != 1 {
		t.Fatalf("%s: %d keys, %v", path, len(ks), err)
	}
	return jwe.PublicKey{Key: ks[0].Public(), KeyID: ks[0].KeyID()}
}

func TestOpenFailsOnABadFile(t *testing.T) {
	if _, err := Open(context.Background(), writeConfig(t, "keys: []\n"), Options{}); err == nil {
		t.Fatal("opened")
	}
}

func mustGCPKey(t *testing.T, s *gcpkmstest.Server) publicKeyer {
	t.Helper()
	c, err := gcpkms.NewClient(context.Background(), s.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	k, err := c.Key(gcpVersion)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustVaultKey(t *testing.T, s *vaulttest.Server) publicKeyer {
	t.Helper()
	k, err := vault.New(context.Background(), vault.Config{Address: s.URL, Mount: "transit", Key: "payments",
		Auth: vault.AuthConfig{Method: vault.AuthToken, Token: s.RootToken}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return k
}
