package config

import (
	"errors"
	"strconv"
	"strings"
)

// ErrInvalid matches (errors.Is) every Errors value: the file was read but
// is not a valid configuration.
var ErrInvalid = errors.New("invalid configuration")

// Error is one problem found in a configuration file, at a 1-based line and
// column (columns count characters, not bytes).
type Error struct {
	File      string
	Line, Col int
	Msg       string
}

// Error returns "file:line:col: msg".
func (e Error) Error() string {
	return e.File + ":" + strconv.Itoa(e.Line) + ":" + strconv.Itoa(e.Col) + ": " + e.Msg
}

// Errors lists every problem of one file in document order.
type Errors []Error

// Error returns one problem per line.
func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Is reports whether target is ErrInvalid.
func (es Errors) Is(target error) bool { return target == ErrInvalid }
