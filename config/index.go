package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pelletier/go-toml/v2/unstable"
)

// Pos is a 1-based line and column (in characters) in a file.
type Pos struct{ Line, Col int }

// index is the result of walking the document's AST: where every path is,
// and the schema and syntax errors found on the way.
type index struct {
	file       string
	data       []byte
	lineStarts []int
	keys       map[string]Pos // the key or table header that names a path
	vals       map[string]Pos // the value at a path
	tables     map[string]Pos // tables opened by a header
	arrays     map[string]int // elements of each [[array table]] so far
	errs       Errors
	syntax     bool   // errs holds a syntax error: the walk stopped there
	lineASCII  []int8 // per line: 0 not yet known, 1 ASCII, 2 not
	last       struct{ line, off, col int }
}

var rootType = reflect.TypeFor[rawConfig]()

func newIndex(file string, data []byte) *index {
	ix := &index{
		file:       file,
		data:       data,
		lineStarts: []int{0},
		keys:       make(map[string]Pos),
		vals:       make(map[string]Pos),
		tables:     make(map[string]Pos),
		arrays:     make(map[string]int),
	}
	ix.last.line = -1
	for i, c := range data {
		if c == '\n' {
			ix.lineStarts = append(ix.lineStarts, i+1)
		}
	}
	return ix
}

// pos converts a byte offset into a line and a character column. Columns
// of ASCII lines are plain differences; on other lines it counts runes
// from the previous position when it can, so that visiting a long line's
// values in order stays linear.
func (ix *index) pos(off int) Pos {
	off = max(0, min(off, len(ix.data)))
	line := sort.Search(len(ix.lineStarts), func(i int) bool { return ix.lineStarts[i] > off }) - 1
	start := ix.lineStarts[line]
	if ix.ascii(line) {
		return Pos{Line: line + 1, Col: off - start + 1}
	}
	from, col := start, 1
	if ix.last.line == line && ix.last.off <= off {
		from, col = ix.last.off, ix.last.col
	}
	col += utf8.RuneCount(ix.data[from:off])
	ix.last.line, ix.last.off, ix.last.col = line, off, col
	return Pos{Line: line + 1, Col: col}
}

// ascii reports (and remembers) whether a line is plain ASCII.
func (ix *index) ascii(line int) bool {
	if ix.lineASCII == nil {
		ix.lineASCII = make([]int8, len(ix.lineStarts))
	}
	if ix.lineASCII[line] == 0 {
		end := len(ix.data)
		if line+1 < len(ix.lineStarts) {
			end = ix.lineStarts[line+1]
		}
		ix.lineASCII[line] = 1
		for _, c := range ix.data[ix.lineStarts[line]:end] {
			if c >= utf8.RuneSelf {
				ix.lineASCII[line] = 2
				break
			}
		}
	}
	return ix.lineASCII[line] == 1
}

// posLineCol converts go-toml's line and byte column into a Pos.
func (ix *index) posLineCol(line, byteCol int) Pos {
	if line < 1 || line > len(ix.lineStarts) {
		return Pos{Line: max(line, 1), Col: max(byteCol, 1)}
	}
	return ix.pos(ix.lineStarts[line-1] + byteCol - 1)
}

func (ix *index) errorf(p Pos, format string, args ...any) {
	ix.errs = append(ix.errs, Error{File: ix.file, Line: p.Line, Col: p.Col, Msg: fmt.Sprintf(format, args...)})
}

func (ix *index) nodePos(n *unstable.Node) Pos { return ix.pos(int(n.Raw.Offset)) }

// walk reads the whole document, recording positions and checking keys
// against the schema. It stops at the first syntax error, which go-toml's
// parser cannot recover from.
func (ix *index) walk() {
	var p unstable.Parser
	p.Reset(ix.data)
	cur, curType := "", rootType
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			cur, curType = ix.header(e)
		case unstable.KeyValue:
			ix.keyValue(cur, curType, e)
		}
	}
	if err := p.Error(); err != nil {
		var pe *unstable.ParserError
		off := len(ix.data)
		msg := err.Error()
		if errors.As(err, &pe) {
			if o := cap(ix.data) - cap(pe.Highlight); o >= 0 && o <= len(ix.data) {
				off = o
			}
			msg = pe.Message
		}
		ix.errorf(ix.pos(off), "syntax error: %s", msg)
		ix.syntax = true
	}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func element(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// generic drops the element indexes of a path: "nat.server[1]" is a
// "nat.server" table.
func generic(path string) string {
	var b strings.Builder
	skip := false
	for _, c := range path {
		switch {
		case c == '[':
			skip = true
		case c == ']':
			skip = false
		case !skip:
			b.WriteRune(c)
		}
	}
	return b.String()
}

func isTableList(t reflect.Type) bool {
	return t != nil && t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct
}

func isTable(t reflect.Type) bool { return t != nil && t.Kind() == reflect.Struct }

// keyNames lists the toml keys of a schema table.
func keyNames(t reflect.Type) []string {
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		names = append(names, t.Field(i).Tag.Get("toml"))
	}
	return names
}

// field resolves key name in table t (a schema struct). It reports an
// unknown key and returns nil; nil means "not checked" (an untyped leaf or
// something already reported) for everything below.
func (ix *index) field(t reflect.Type, parent, name string, p Pos, isArrayElem bool) reflect.Type {
	if !isTable(t) {
		return nil
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Tag.Get("toml") == name {
			return f.Type
		}
	}
	where := "at the top level"
	if parent != "" {
		if isArrayElem {
			where = "in [[" + generic(parent) + "]]"
		} else {
			where = "in [" + generic(parent) + "]"
		}
	}
	ix.errorf(p, "unknown key %q %s; allowed: %s", name, where, strings.Join(keyNames(t), ", "))
	return nil
}

// headerPos is the position of the '[' that opens a table header whose
// first key part is k.
func (ix *index) headerPos(k *unstable.Node) Pos {
	off := int(k.Raw.Offset)
	for off > 0 {
		c := ix.data[off-1]
		if c != ' ' && c != '\t' && c != '[' {
			break
		}
		off--
	}
	for off < len(ix.data) && ix.data[off] != '[' {
		off++
	}
	return ix.pos(off)
}

func keyParts(n *unstable.Node) []*unstable.Node {
	var parts []*unstable.Node
	it := n.Key()
	for it.Next() {
		parts = append(parts, it.Node())
	}
	return parts
}

// header handles [a.b] and [[a.b]]; it returns the path the following
// keys belong to and its schema type.
func (ix *index) header(e *unstable.Node) (string, reflect.Type) {
	parts := keyParts(e)
	isArray := e.Kind == unstable.ArrayTable
	hp := ix.headerPos(parts[0])
	path, t := "", rootType
	parentIsElem := false
	for i, k := range parts {
		name := string(k.Data)
		last := i == len(parts)-1
		kp := ix.nodePos(k)
		parent := path
		path = join(path, name)
		t = ix.field(t, parent, name, kp, parentIsElem)
		parentIsElem = false
		if last && isArray {
			n := ix.arrays[path]
			ix.arrays[path] = n + 1
			switch {
			case t == nil || t.Kind() == reflect.Interface:
				t = nil
			case isTableList(t):
				t = t.Elem()
			case isTable(t):
				ix.errorf(hp, "[%s] is a single table: write [%s], not [[%s]]", generic(path), generic(path), generic(path))
				t = nil
			}
			path = element(path, n)
		} else {
			if n, ok := ix.arrays[path]; ok {
				path = element(path, n-1)
				parentIsElem = true
				if isTableList(t) {
					t = t.Elem()
				}
			} else if isTableList(t) {
				ix.errorf(hp, "%s is a list of tables: write [[%s]]", generic(path), generic(path))
				t = nil
			}
			if t != nil && t.Kind() == reflect.Interface {
				t = nil
			}
		}
		if !last {
			if _, ok := ix.keys[path]; !ok {
				ix.keys[path] = kp
			}
			continue
		}
		if prev, dup := ix.tables[path]; dup && !isArray {
			ix.errorf(hp, "table [%s] is already defined at line %d; each table may appear once", path, prev.Line)
		}
		ix.tables[path] = hp
		ix.keys[path] = hp
	}
	return path, t
}

// keyValue handles a = v and a.b = v inside table cur of type t.
func (ix *index) keyValue(cur string, t reflect.Type, kv *unstable.Node) {
	parts := keyParts(kv)
	path := cur
	parentIsElem := strings.HasSuffix(cur, "]")
	for i, k := range parts {
		name := string(k.Data)
		kp := ix.nodePos(k)
		parent := path
		path = join(path, name)
		t = ix.field(t, parent, name, kp, parentIsElem)
		parentIsElem = false
		if i < len(parts)-1 {
			if isTableList(t) {
				ix.errorf(kp, "%s is a list of tables: write [[%s]]", generic(path), generic(path))
				t = nil
			} else if t != nil && t.Kind() == reflect.Interface {
				t = nil
			}
			if _, ok := ix.keys[path]; !ok {
				ix.keys[path] = kp
			}
			continue
		}
		ix.keys[path] = kp
	}
	last := parts[len(parts)-1]
	ix.value(path, t, kv.Value(), ix.valueStart(last, kv.Value()))
}

// valueStart finds where the value after key part last begins: arrays carry
// no position of their own, so it skips the '=' by hand.
func (ix *index) valueStart(last, v *unstable.Node) Pos {
	if v.Kind != unstable.Array {
		return ix.nodePos(v)
	}
	off := int(last.Raw.Offset + last.Raw.Length)
	for off < len(ix.data) && (ix.data[off] == ' ' || ix.data[off] == '\t' || ix.data[off] == '=') {
		off++
	}
	return ix.pos(off)
}

func (ix *index) value(path string, t reflect.Type, v *unstable.Node, p Pos) {
	if prev, dup := ix.vals[path]; dup {
		ix.errorf(p, "%s is already set at line %d; each key may appear once", path, prev.Line)
		return
	}
	ix.vals[path] = p
	if t != nil && t.Kind() == reflect.Interface {
		t = nil
	}
	switch v.Kind {
	case unstable.InlineTable:
		if isTableList(t) {
			ix.errorf(p, "%s is a list of tables: write [[%s]] tables or an array of inline tables", path, generic(path))
			t = nil
		}
		it := v.Children()
		for it.Next() {
			if kv := it.Node(); kv.Kind == unstable.KeyValue {
				ix.keyValue(path, t, kv)
			}
		}
	case unstable.Array:
		var et reflect.Type
		switch {
		case isTableList(t):
			et = t.Elem()
		case isTable(t):
			ix.errorf(p, "%s is a table, not an array: write [%s]", path, generic(path))
			return
		}
		i := 0
		it := v.Children()
		for it.Next() {
			c := it.Node()
			if c.Kind == unstable.Comment {
				continue
			}
			cp := p
			if c.Kind != unstable.Array {
				cp = ix.nodePos(c)
			}
			ix.value(element(path, i), et, c, cp)
			i++
		}
	default:
		switch {
		case isTableList(t):
			ix.errorf(p, "%s is a list of tables: write [[%s]] with its keys below", path, generic(path))
		case isTable(t):
			ix.errorf(p, "%s is a table: write [%s] with its keys below", path, generic(path))
		}
	}
}

// at returns the best position for a problem with path: its value, else
// its key or header, else the nearest enclosing path that has one.
func (ix *index) at(path string) Pos {
	for {
		if p, ok := ix.vals[path]; ok {
			return p
		}
		if p, ok := ix.keys[path]; ok {
			return p
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return Pos{Line: 1, Col: 1}
		}
		path = path[:i]
	}
}

// keyAt is like at but prefers the key (or table header) of path.
func (ix *index) keyAt(path string) Pos {
	if p, ok := ix.keys[path]; ok {
		return p
	}
	return ix.at(path)
}
