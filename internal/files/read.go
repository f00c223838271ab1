// Package files reads the files the webhook is configured with: each through
// a size limit (Read), and, for those it keeps watching, again whenever their
// contents change (Reloader). It is the only place that reads such a file.
package files

import (
	"fmt"
	"io"
	"io/fs"
	"os"
)

// SizeError means a file is larger than the limit it was read with.
type SizeError struct {
	Limit int64
}

func (e *SizeError) Error() string {
	const mib = 1 << 20
	if e.Limit >= mib && e.Limit%mib == 0 {
		return fmt.Sprintf("larger than the %d MiB limit", e.Limit/mib)
	}
	return fmt.Sprintf("larger than the %d-byte limit", e.Limit)
}

// Read returns the contents of the file at path, refusing a file of more
// than limit bytes without reading the rest. Every error is an *fs.PathError
// naming the operation and path; for a file too large it wraps a *SizeError.
// Errors never hold the file's contents.
func Read(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, &fs.PathError{Op: "read", Path: path, Err: &SizeError{Limit: limit}}
	}
	return data, nil
}
