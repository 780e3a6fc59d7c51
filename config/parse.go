package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
)

// MaxFileSize bounds a configuration file; anything larger is refused.
const MaxFileSize = 1 << 20

// Load reads and parses the file at path. Problems inside the file are
// returned as Errors; a file that cannot be read as a wrapped error.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	return Parse(path, data)
}

// Parse parses and validates a configuration; filename only labels the
// positions of errors. On failure the error is Errors, every problem found
// (as many as one pass can find), sorted by position.
func Parse(filename string, data []byte) (*Config, error) {
	if len(data) > MaxFileSize {
		return nil, Errors{{File: filename, Line: 1, Col: 1,
			Msg: fmt.Sprintf("file is larger than %d bytes; a configuration must be smaller", MaxFileSize)}}
	}
	ix := newIndex(filename, data)
	ix.walk()
	if ix.syntax {
		return nil, sorted(ix.errs)
	}

	// With unknown keys or misplaced tables already reported, decode
	// leniently anyway: if that works, the values' problems are reported
	// together with them.
	var raw rawConfig
	dec := toml.NewDecoder(bytes.NewReader(data))
	if len(ix.errs) == 0 {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(&raw); err != nil {
		if len(ix.errs) > 0 {
			return nil, sorted(ix.errs)
		}
		return nil, Errors{ix.decodeError(err)}
	}

	c := &converter{ix: ix}
	cfg := c.convert(&raw)
	if errs := append(ix.errs, c.errs...); len(errs) > 0 {
		return nil, sorted(errs)
	}
	cfg.File = filename
	cfg.Warnings = sorted(c.warns)
	return cfg, nil
}

// decodeError turns what go-toml's decoder refused (after the walk found
// nothing) into a positioned Error.
func (ix *index) decodeError(err error) Error {
	var de *toml.DecodeError
	var se *toml.StrictMissingError
	switch {
	case errors.As(err, &de):
		line, col := de.Position()
		p := ix.posLineCol(line, col)
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if k := de.Key(); len(k) > 0 {
			msg = strings.Join(k, ".") + ": " + msg
		}
		return Error{File: ix.file, Line: p.Line, Col: p.Col, Msg: msg}
	case errors.As(err, &se) && len(se.Errors) > 0:
		return ix.decodeError(&se.Errors[0])
	}
	return Error{File: ix.file, Line: 1, Col: 1, Msg: err.Error()}
}

// MaxErrors bounds the problems reported for one file; the last one then
// says how many more there were.
const MaxErrors = 100

func sorted(es Errors) Errors {
	slices.SortStableFunc(es, func(a, b Error) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Col - b.Col
	})
	es = slices.CompactFunc(es, func(a, b Error) bool { return a == b })
	if len(es) > MaxErrors {
		more := es[MaxErrors]
		more.Msg = fmt.Sprintf("too many problems: %d more from here on are not shown", len(es)-MaxErrors)
		es = append(es[:MaxErrors], more)
	}
	return es
}
