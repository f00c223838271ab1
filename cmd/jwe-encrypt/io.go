package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/jwe-webhook/jwe-webhook/internal/files"
)

// maxManifestSize caps how much of a manifest is read.
const maxManifestSize = 16 << 20

// displayName names a file given on the command line in messages.
func displayName(path string) string {
	if path == "-" {
		return "<stdin>"
	}
	return path
}

// readInput reads the file at path, or standard input for "-", up to limit
// bytes.
func (c *cli) readInput(path string, limit int64) ([]byte, error) {
	if path == "-" {
		return readAll(c.stdin, "standard input", limit)
	}
	return readFile(path, limit)
}

// readFile reads the file at path, refusing more than limit bytes.
func readFile(path string, limit int64) ([]byte, error) {
	return files.Read(path, limit)
}

// readAll reads r, standard input, refusing more than limit bytes.
func readAll(r io.Reader, name string, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, limit)
	}
	return data, nil
}

// write writes data to standard output when path is "", else to the file at
// path (through a symbolic link to its target), replacing it in one rename
// and keeping its mode, so that an interrupted run leaves the old file whole.
func (c *cli) write(path string, data []byte) error {
	return c.writeMode(path, data, 0o644)
}

// writeMode is write with the mode of a new file.
func (c *cli) writeMode(path string, data []byte, mode fs.FileMode) error {
	if path == "" {
		_, err := c.stdout.Write(data)
		return err
	}
	if target, err := filepath.EvalSymlinks(path); err == nil {
		path = target
	}
	switch fi, err := os.Stat(path); {
	case err == nil && !fi.Mode().IsRegular():
		return fmt.Errorf("write %s: not a regular file", path)
	case err == nil:
		mode = fi.Mode().Perm()
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing to remove
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
