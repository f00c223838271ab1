package keyconfig

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
	"github.com/jwe-webhook/jwe-webhook/internal/kms"
)

// TestBuildWithAKeyServiceDown: Vault and Cloud KMS both down while the
// keyring is built. It builds with every key; the local key serves at once,
// the others refuse their values as not reached (not as a mismatch) and are
// reported, until their services answer, which the keyring notices by
// itself.
func TestBuildWithAKeyServiceDown(t *testing.T) {
	yaml, gcp, v := services(t)
	ctx := context.Background()
	pubs := map[string]jwe.PublicKey{}
	for name, src := range map[string]publicKeyer{"gcpkms": mustGCPKey(t, gcp), "vault": mustVaultKey(t, v)} {
		pk, err := src.PublicKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pubs[name] = pk
	}
	v.SetUnavailable(true)
	gcp.Close()

	cfg, err := Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := Build(ctx, cfg, Options{Keyring: kms.Options{Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatalf("a key service down stopped the build: %v", err)
	}
	defer keys.Close()
	if err := roundTrip(t, localPublicKey(t, "testdata/ec-p256.pem"), "team-a", keys.Unwrap); err != nil {
		t.Fatalf("local key with the others down: %v", err)
	}
	err = roundTrip(t, pubs["vault"], "ns", keys.Unwrap)
	if !errors.Is(err, ErrNotConnected) || errors.Is(err, jwe.ErrKeyMismatch) {
		t.Fatalf("vault value while Vault is down: %v, want ErrNotConnected", err)
	}
	states := keys.KeyStates()
	if len(states) != 2 {
		t.Fatalf("states %+v, want one per remote key", states)
	}
	for _, s := range states {
		if s.Err == nil {
			t.Errorf("%s %s reported reached while down", s.Provider, s.KeyID)
		}
	}

	v.SetUnavailable(false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := stateOf(keys.KeyStates(), "vault")
		if s.Err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Vault back, still not reached: %v", s.Err)
		}
		time.Sleep(20 * time.Millisecond) // polling the state, not waiting a fixed time
	}
	if err := roundTrip(t, pubs["vault"], "ns", keys.Unwrap); err != nil {
		t.Fatalf("vault value after Vault came back: %v", err)
	}
	if s := stateOf(keys.KeyStates(), "gcpkms"); s.Err == nil || !strings.Contains(s.Err.Error(), "gcp kms") {
		t.Errorf("Cloud KMS still down, state %+v", s)
	}
}

func stateOf(states []KeyState, provider string) KeyState {
	for _, s := range states {
		if s.Provider == provider {
			return s
		}
	}
	return KeyState{}
}

// TestMadeUpVersionCostsOneCall: a Secret of 200 values naming a Cloud KMS
// key version that does not exist costs one call to Cloud KMS, through the
// keyring the webhook builds (negative cache, limit and content-key cache).
func TestMadeUpVersionCostsOneCall(t *testing.T) {
	yaml, gcp, _ := services(t)
	cfg, err := Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := Build(context.Background(), cfg, Options{Keyring: kms.Options{
		Timeout:  5 * time.Second,
		Cache:    kms.NewCache(100, time.Hour, 5*time.Second),
		Negative: kms.NewNegativeCache(100, time.Minute),
		Limit:    kms.NewCallLimit(64),
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	before := gcp.Calls()
	madeUp := strings.TrimSuffix(gcpVersion, "1") + "99"
	errs := make(chan error, 200)
	for i := range cap(errs) {
		go func() {
			_, err := keys.Unwrap(context.Background(), "ns", jwe.Recipient{KeyID: madeUp, Algorithm: "RSA-OAEP-256", EncryptedKey: []byte{byte(i)}})
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; !errors.Is(err, kms.ErrKeyNotFound) {
			t.Fatalf("made-up version: %v, want ErrKeyNotFound", err)
		}
	}
	after := gcp.Calls()
	if n := after.GetPublicKey + after.AsymmetricDecrypt - before.GetPublicKey - before.AsymmetricDecrypt; n != 1 {
		t.Fatalf("%d calls to Cloud KMS for one made-up version, want 1", n)
	}
}
