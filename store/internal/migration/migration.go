// Package migration reads the embedded schema migrations of a store backend.
package migration

import (
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// Migration takes a schema from version Version-1 to Version.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// MustLoad reads the migrations in dir of fsys, named NNNN_what.sql and
// numbered from 1 without gaps; migrations[i] takes the schema from version i
// to i+1. A malformed set is a build defect, so it panics, naming backend.
func MustLoad(fsys fs.FS, dir, backend string) []Migration {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		panic(err)
	}
	ms := make([]Migration, 0, len(entries))
	for i, e := range entries { // sorted by name
		prefix, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || v != i+1 {
			panic(fmt.Sprintf("%s: migration %s: want a name starting %04d_", backend, e.Name(), i+1))
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			panic(err)
		}
		ms = append(ms, Migration{Version: v, Name: e.Name(), SQL: string(b)})
	}
	return ms
}
