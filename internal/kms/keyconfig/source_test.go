package keyconfig

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms"
)

const (
	oneKey  = "keys:\n  - provider: local\n    local: {file: testdata/ec-p256.pem}\n"
	twoKeys = oneKey + "  - provider: local\n    local: {file: testdata/ec-p256-other.pem}\n"
	broken  = "keys:\n  - provider: local\n"
)

// openSource opens the key configuration at path and closes it when the
// test ends.
func openSource(t *testing.T, path string, opts Options) *Source {
	t.Helper()
	src, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	return src
}

// TestSourceBackToTheGoodFile: a broken file is reported; putting the file
// in use back clears the report without a rebuild.
func TestSourceBackToTheGoodFile(t *testing.T) {
	path := writeConfig(t, oneKey)
	ctx := context.Background()
	src := openSource(t, path, Options{})
	loaded := src.Status().Loaded
	if loaded.IsZero() || src.Status().Err != nil {
		t.Fatalf("after Open: %+v", src.Status())
	}
	pk := localPublicKey(t, "testdata/ec-p256.pem")

	writeFile(t, path, broken)
	if _, err := src.Reload(ctx); err == nil || src.Status().Err == nil {
		t.Fatalf("broken file: %v, status %+v", err, src.Status())
	}
	if roundTrip(t, pk, "ns", src.Unwrap) != nil {
		t.Fatal("a broken file must leave the last good keys in use")
	}

	writeFile(t, path, oneKey)
	swapped, err := src.Reload(ctx)
	if swapped || err != nil || src.Err() != nil {
		t.Fatalf("the good file back: swapped %v, %v, Err %v; want no rebuild and no error", swapped, err, src.Err())
	}
	if s := src.Status(); !s.Loaded.Equal(loaded) {
		t.Fatalf("loaded at %v, want still %v", s.Loaded, loaded)
	}
}

// TestSourceRemovedKeyLeavesTheCache: the content keys a removed key
// unwrapped are dropped from the cache on the reload that removes it.
func TestSourceRemovedKeyLeavesTheCache(t *testing.T) {
	path := writeConfig(t, twoKeys)
	cache := kms.NewCache(100, time.Hour, time.Minute)
	ctx := context.Background()
	src := openSource(t, path, Options{Keyring: kms.Options{Cache: cache}})
	kept, removed := localPublicKey(t, "testdata/ec-p256.pem"), localPublicKey(t, "testdata/ec-p256-other.pem")
	for _, pk := range []jwe.PublicKey{kept, removed} {
		if err := roundTrip(t, pk, "ns", src.Unwrap); err != nil {
			t.Fatal(err)
		}
	}
	if s := cache.Stats(); s.Entries != 2 {
		t.Fatalf("before the reload: %+v", s)
	}
	writeFile(t, path, oneKey)
	if swapped, err := src.Reload(ctx); !swapped || err != nil {
		t.Fatalf("reload: %v, %v", swapped, err)
	}
	if s := cache.Stats(); s.Entries != 1 || s.Evictions != 1 {
		t.Fatalf("after removing a key: %+v, want only the kept key's entry", s)
	}
	if roundTrip(t, removed, "ns", src.Unwrap) == nil {
		t.Fatal("the removed key still opens values")
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestBuildValueWithoutKid: a value without kid goes to the one configured
// key of its algorithm's kind, here the RSA key beside an EC key.
func TestBuildValueWithoutKid(t *testing.T) {
	cfg := &File{Keys: []Key{
		{Provider: "local", Local: &Local{File: "testdata/ec-p256.pem"}},
		{Provider: "local", Local: &Local{File: "testdata/rsa-2048.pem"}},
	}}
	keys, err := Build(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	pk := localPublicKey(t, "testdata/rsa-2048.pem")
	pk.KeyID = ""
	if err := roundTrip(t, pk, "ns", keys.Unwrap); err != nil {
		t.Fatalf("a value without kid for the one RSA key: %v", err)
	}
}
