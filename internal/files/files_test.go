package files

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	exact := filepath.Join(dir, "exact")
	write(t, exact, strings.Repeat("x", 16))
	over := filepath.Join(dir, "over")
	write(t, over, strings.Repeat("SECRET", 3))
	big := filepath.Join(dir, "big")
	write(t, big, strings.Repeat("\n", 1<<20+1))

	tests := []struct {
		path    string
		limit   int64
		want    string // the contents, when wantErr is ""
		wantErr string
		wantIs  error
	}{
		{path: exact, limit: 16, want: strings.Repeat("x", 16)},
		{path: over, limit: 16, wantErr: "read " + over + ": larger than the 16-byte limit"},
		{path: big, limit: 1 << 20, wantErr: "read " + big + ": larger than the 1 MiB limit"},
		{path: filepath.Join(dir, "missing"), limit: 16, wantErr: "open " + filepath.Join(dir, "missing") + ": ", wantIs: fs.ErrNotExist},
		{path: dir, limit: 16, wantErr: "read " + dir + ": "},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			got, err := Read(tt.path, tt.limit)
			if tt.wantErr == "" {
				if err != nil || string(got) != tt.want {
					t.Fatalf("got %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("got error %v, want one starting with %q", err, tt.wantErr)
			}
			if _, ok := errors.AsType[*fs.PathError](err); !ok {
				t.Errorf("error %v is not an *fs.PathError", err)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v does not wrap %v", err, tt.wantIs)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error %q shows the file's contents", err)
			}
		})
	}
}

// value is what the test reloader builds: the files' contents joined, or an
// error for a file that says "broken".
type value struct{ s string }

func newTestReloader(t *testing.T, paths []string, replaced *[]string, log *zap.Logger) (*Reloader[value], error) {
	t.Helper()
	return NewReloader(t.Context(), Config[value]{
		What: "test value", Paths: paths, Limit: 64, Log: log,
		Build: func(_ context.Context, contents [][]byte) (*value, error) {
			joined := string(bytes.Join(contents, []byte("+")))
			if strings.Contains(joined, "broken") {
				return nil, fmt.Errorf("build %q: broken", paths)
			}
			return &value{joined}, nil
		},
		Replaced: func(old, current *value) { *replaced = append(*replaced, old.s+">"+current.s) },
	})
}

func TestReloader(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	write(t, a, "a1")
	write(t, b, "b1")
	var replaced []string
	r, err := newTestReloader(t, []string{a, b}, &replaced, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	steps := []struct {
		name        string
		file, write string // the change before Reload; none when file is ""
		wantSwapped bool
		wantErr     bool
		wantValue   string
		wantErrKept bool // Err() after the step is not nil
	}{
		{name: "unchanged", wantValue: "a1+b1"},
		{name: "second file changed", file: b, write: "b2", wantSwapped: true, wantValue: "a1+b2"},
		{name: "broken keeps the last good", file: a, write: "broken", wantErr: true, wantValue: "a1+b2", wantErrKept: true},
		{name: "still broken", wantErr: true, wantValue: "a1+b2", wantErrKept: true},
		{name: "back to the contents in use", file: a, write: "a1", wantValue: "a1+b2"},
		{name: "too large keeps the last good", file: b, write: strings.Repeat("x", 65), wantErr: true, wantValue: "a1+b2", wantErrKept: true},
		{name: "fixed", file: b, write: "b3", wantSwapped: true, wantValue: "a1+b3"},
	}
	for _, s := range steps {
		if s.file != "" {
			write(t, s.file, s.write)
		}
		swapped, err := r.Reload(ctx)
		if swapped != s.wantSwapped || (err != nil) != s.wantErr {
			t.Fatalf("%s: Reload() = %v, %v; want swapped %v, error %v", s.name, swapped, err, s.wantSwapped, s.wantErr)
		}
		if got := r.Load().s; got != s.wantValue {
			t.Fatalf("%s: value %q, want %q", s.name, got, s.wantValue)
		}
		if (r.Err() != nil) != s.wantErrKept {
			t.Fatalf("%s: Err() = %v", s.name, r.Err())
		}
	}
	if want := []string{"a1+b1>a1+b2", "a1+b2>a1+b3"}; !slices.Equal(replaced, want) {
		t.Errorf("replaced %q, want %q", replaced, want)
	}
}

func TestNewReloaderFails(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken")
	write(t, broken, "broken")
	var replaced []string
	for _, path := range []string{broken, filepath.Join(dir, "missing")} {
		if r, err := newTestReloader(t, []string{path}, &replaced, nil); err == nil {
			t.Errorf("%s: got %v, want an error", path, r.Load())
		}
	}
}

// TestWatchLogsEachFailureOnce reloads on every tick and logs a broken file
// once, not at every tick, and again after it was fixed and broken anew.
func TestWatchLogsEachFailureOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v")
	write(t, path, "v1")
	core, logs := observer.New(zap.ErrorLevel)
	var replaced []string
	r, err := newTestReloader(t, []string{path}, &replaced, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { r.Watch(ctx, time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		deadline := time.After(10 * time.Second)
		for !cond() {
			select {
			case <-tick.C:
			case <-deadline:
				t.Fatalf("waited 10s for %s", what)
			}
		}
	}
	write(t, path, "broken")
	waitFor("the failure to be logged", func() bool { return logs.Len() == 1 })
	write(t, path, "v2")
	waitFor("the fixed file to be used", func() bool { return r.Load().s == "v2" })
	if n := logs.FilterMessage("reload test value; keeping the current one").Len(); n != 1 {
		t.Errorf("a broken file logged %d times, want once", n)
	}
	write(t, path, "broken again")
	waitFor("the new failure to be logged", func() bool { return logs.Len() == 2 })
}
