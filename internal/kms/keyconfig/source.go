package keyconfig

import (
	"context"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/jwe-webhook/jwe-webhook/internal/files"
	"github.com/jwe-webhook/jwe-webhook/internal/jwe"
)

// closeDelay is how long a replaced keyring's clients stay open, so that
// reviews already using it finish.
const closeDelay = time.Minute

// Source is the keyring of a key configuration file, rebuilt when the file
// changes. A file that no longer builds leaves the last good keyring in place
// and is reported by Err and Status until it is fixed, or back to the
// content of the keyring in use. Reload, Watch, Err and Status are those of
// the files.Reloader every file the webhook reloads goes through.
type Source struct {
	*files.Reloader[Keys]
}

// Status is what the last reload of a key configuration file did.
type Status = files.Status

// Open builds the keyring of the file at path; it fails when the file does.
// When a reload replaces the keyring, the content keys that a key no longer
// configured unwrapped are dropped from the cache at once, and the old
// keyring's clients are closed after a minute.
func Open(ctx context.Context, path string, opts Options) (*Source, error) {
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	build := func(ctx context.Context, contents [][]byte) (*Keys, error) {
		cfg, err := parseFile(path, contents[0])
		if err != nil {
			return nil, err
		}
		keys, err := Build(ctx, cfg, opts)
		if err != nil {
			return nil, err
		}
		opts.Log.Info("key configuration loaded", zap.String("file", path), zap.Strings("kids", keys.KeyIDs()))
		return keys, nil
	}
	replaced := func(old, current *Keys) {
		forgetRemoved(opts, old.KeyIDs(), current.KeyIDs())
		time.AfterFunc(closeDelay, old.Close)
	}
	r, err := files.NewReloader(ctx, files.Config[Keys]{
		What: "key configuration", Paths: []string{path}, Limit: MaxFileSize,
		Build: build, Replaced: replaced, Log: opts.Log,
		Failed: "key configuration not reloaded; the previous keys stay in use",
	})
	if err != nil {
		return nil, err
	}
	return &Source{r}, nil
}

// forgetRemoved drops from the cache the content keys of the keys in old
// that are not in current.
func forgetRemoved(opts Options, old, current []string) {
	cache := opts.Keyring.Cache
	if cache == nil {
		return
	}
	for _, kid := range old {
		if !slices.Contains(current, kid) {
			cache.Forget(kid)
			opts.Log.Info("key removed from the configuration; its cached content keys are dropped", zap.String("kid", kid))
		}
	}
}

// Unwrap unwraps with the current keyring.
func (s *Source) Unwrap(ctx context.Context, namespace string, k jwe.Recipient) ([]byte, error) {
	return s.Load().Unwrap(ctx, namespace, k)
}

// KeyStates says for each key of the current keyring in a remote key
// service whether the service has been reached.
func (s *Source) KeyStates() []KeyState { return s.Load().KeyStates() }

// KeyIDs are the current keyring's key IDs.
func (s *Source) KeyIDs() []string { return s.Load().KeyIDs() }

// PublicKeys returns the public keys of the keys in use.
func (s *Source) PublicKeys(ctx context.Context) ([]jwe.PublicKey, error) {
	return s.Load().PublicKeys(ctx)
}

// Close releases the current keyring's clients.
func (s *Source) Close() { s.Load().Close() }
