package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// manifestExtensions are the names of the files read in directories.
var manifestExtensions = []string{".yaml", ".yml", ".json"}

// skipDirs are the directories not entered.
var skipDirs = []string{".git", "node_modules", "vendor"}

// walkManifests calls file for root when it is a file, whatever its name, or
// else for each manifest in the directory tree root, in lexical order:
// *.yaml, *.yml and *.json files outside .git, node_modules and vendor.
func walkManifests(root string, file func(path string) error) error {
	fi, err := os.Stat(root)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return file(root)
	}
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && path != root && slices.Contains(skipDirs, d.Name()):
			return filepath.SkipDir
		case d.Type().IsRegular() && slices.Contains(manifestExtensions, strings.ToLower(filepath.Ext(path))):
			return file(path)
		}
		return nil
	})
}

// isDir reports whether path is a directory.
func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}
