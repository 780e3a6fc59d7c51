package alg

import "strconv"

// kind names the FTP line forms the ALG acts on.
type kind uint8

const (
	kindNone kind = iota // a line the ALG does not inspect
	kindPORT             // client: PORT h1,h2,h3,h4,p1,p2 (RFC 959 4.1.2)
	kindEPRT             // client: EPRT |1|a.b.c.d|port| (RFC 2428 2)
	kind227              // server: 227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)
	kind229              // server: 229 Entering Extended Passive Mode (|||port|) (RFC 2428 3)
)

var kindNames = [...]string{"none", "PORT", "EPRT", "227", "229"}

func (k kind) String() string { return kindNames[k] }

// endpoint is what a PORT, EPRT, 227 or 229 line announces, and where the
// announcement is written in the line: line[start:end] is the text a
// rewrite replaces. For 229 the text is the port alone (the line carries
// no address); for EPRT it is the whole |1|addr|port| field, delimiters
// included, so that a rewrite regenerates it in one piece.
type endpoint struct {
	kind       kind
	addr       uint32 // host byte order; 0 for 229
	port       uint16
	start, end int
	delim      byte // the EPRT/229 delimiter character
}

// A line longer than maxLine bytes (terminator included) is never parsed:
// it is passed through and counted. RFC 959 lines are far shorter, and
// the bound caps what the ALG buffers per direction.
const maxLine = 512

// parseCommand inspects one client command line (without its CR LF). It
// returns kindNone for commands the ALG ignores; ok is false when the
// command is PORT or EPRT but its argument is malformed (or, for EPRT, not
// an IPv4 address), in which case the line passes through untouched.
// Command verbs are case-insensitive (RFC 959 5.3).
func parseCommand(line []byte, e *endpoint) (ok bool) {
	*e = endpoint{}
	if len(line) < 5 || line[4] != ' ' {
		return true
	}
	switch {
	case verbIs(line, "PORT"):
		e.kind = kindPORT
		i := skipSpaces(line, 5)
		e.start = i
		i, ok = parseHostPort(line, i, e)
		if !ok {
			return false
		}
		e.end = i
		return skipSpaces(line, i) == len(line)
	case verbIs(line, "EPRT"):
		e.kind = kindEPRT
		i := skipSpaces(line, 5)
		e.start = i
		i, ok = parseEPRT(line, i, e)
		if !ok {
			return false
		}
		e.end = i
		return skipSpaces(line, i) == len(line)
	}
	return true
}

// parseReply inspects one server reply line (without its CR LF) that
// starts a reply (not a continuation line of a multi-line reply). It
// returns kindNone for replies the ALG ignores and ok false for a 227 or
// 229 whose endpoint cannot be read.
func parseReply(line []byte, e *endpoint) (ok bool) {
	*e = endpoint{}
	if len(line) < 4 || line[3] != ' ' || line[0] != '2' || line[1] != '2' {
		return true
	}
	switch line[2] {
	case '7':
		// RFC 1123 4.1.2.6: the text of a 227 reply is not standardised
		// ("227 Entering Passive Mode (h1,...)", "227 =h1,...", without
		// parentheses, ...); a client must scan for the six numbers. Like
		// curl, which tries each place until six numbers parse, the ALG
		// takes the first run of digits that starts them, so that a digit
		// in the prose before them ("227 Mode 2 (h1,...)") does not hide
		// the endpoint the client will use. Anything after them is prose.
		e.kind = kind227
		for i := 4; i < len(line); i++ {
			if !isDigit(line[i]) || isDigit(line[i-1]) {
				continue
			}
			if j, ok := parseHostPort(line, i, e); ok {
				e.start, e.end = i, j
				return true
			}
		}
		return false
	case '9':
		// RFC 2428 3: "229 Entering Extended Passive Mode (|||port|)".
		e.kind = kind229
		i := 4
		for i < len(line) && line[i] != '(' {
			i++
		}
		i++
		if i+3 > len(line) {
			return false
		}
		d := line[i]
		if !isDelim(d) || line[i+1] != d || line[i+2] != d {
			return false
		}
		e.delim = d
		i += 3
		e.start = i
		p, j, ok := parseNum(line, i, 5, 65535)
		if !ok || j+2 > len(line) || line[j] != d || line[j+1] != ')' {
			return false
		}
		e.port, e.end = uint16(p), j
		return true
	}
	return true
}

// parseHostPort reads "h1,h2,h3,h4,p1,p2" at line[i:] (RFC 959 4.1.2:
// host-port) into e and returns the index after it.
func parseHostPort(line []byte, i int, e *endpoint) (int, bool) {
	var v [6]uint32
	for k := range v {
		if k > 0 {
			if i >= len(line) || line[i] != ',' {
				return i, false
			}
			i++
		}
		n, j, ok := parseNum(line, i, 3, 255)
		if !ok {
			return i, false
		}
		v[k], i = n, j
	}
	e.addr = v[0]<<24 | v[1]<<16 | v[2]<<8 | v[3]
	e.port = uint16(v[4]<<8 | v[5])
	return i, true
}

// parseEPRT reads "<d>1<d>a.b.c.d<d>port<d>" at line[i:] (RFC 2428 2).
// Network protocol 2 (IPv6) is refused as malformed: a NAT44 control
// connection cannot announce an IPv6 data endpoint that makes sense here.
func parseEPRT(line []byte, i int, e *endpoint) (int, bool) {
	if i+2 > len(line) || !isDelim(line[i]) {
		return i, false
	}
	d := line[i]
	e.delim = d
	if line[i+1] != '1' || i+2 >= len(line) || line[i+2] != d {
		return i, false
	}
	i += 3
	var a uint32
	for k := 0; k < 4; k++ {
		if k > 0 {
			if i >= len(line) || line[i] != '.' {
				return i, false
			}
			i++
		}
		n, j, ok := parseNum(line, i, 3, 255)
		if !ok {
			return i, false
		}
		a, i = a<<8|n, j
	}
	if i >= len(line) || line[i] != d {
		return i, false
	}
	p, j, ok := parseNum(line, i+1, 5, 65535)
	if !ok || j >= len(line) || line[j] != d {
		return i, false
	}
	e.addr, e.port = a, uint16(p)
	return j + 1, true
}

// parseNum reads 1 to maxDigits decimal digits at line[i:] with a value
// at most maxVal.
func parseNum(line []byte, i, maxDigits int, maxVal uint32) (uint32, int, bool) {
	var n uint32
	j := i
	for j < len(line) && j-i < maxDigits && isDigit(line[j]) {
		n = n*10 + uint32(line[j]-'0')
		j++
	}
	if j == i || n > maxVal || (j < len(line) && isDigit(line[j])) {
		return 0, i, false
	}
	return n, j, true
}

// appendEndpoint appends the text that replaces line[e.start:e.end] when
// the endpoint becomes addr:port, in the line's own form.
func appendEndpoint(dst []byte, e *endpoint, addr uint32, port uint16) []byte {
	switch e.kind {
	case kindPORT, kind227:
		for k := 3; k >= 0; k-- {
			dst = strconv.AppendUint(dst, uint64(addr>>(8*k)&0xff), 10)
			dst = append(dst, ',')
		}
		dst = strconv.AppendUint(dst, uint64(port>>8), 10)
		dst = append(dst, ',')
		return strconv.AppendUint(dst, uint64(port&0xff), 10)
	case kindEPRT:
		dst = append(dst, e.delim, '1', e.delim)
		for k := 3; k >= 0; k-- {
			dst = strconv.AppendUint(dst, uint64(addr>>(8*k)&0xff), 10)
			if k > 0 {
				dst = append(dst, '.')
			}
		}
		dst = append(dst, e.delim)
		dst = strconv.AppendUint(dst, uint64(port), 10)
		return append(dst, e.delim)
	case kind229:
		return strconv.AppendUint(dst, uint64(port), 10)
	}
	panic("alg: appendEndpoint of a line without endpoint")
}

// verbIs reports whether line starts with the upper-case verb v, compared
// case-insensitively.
func verbIs(line []byte, v string) bool {
	for i := 0; i < len(v); i++ {
		if line[i]&^0x20 != v[i] {
			return false
		}
	}
	return true
}

// mayStart reports whether a partial line (no terminator yet) could still
// become a line the ALG must rewrite: its bytes are a prefix of one of the
// triggers. Such a line is held until it is complete; any other partial
// line is passed on at once.
func mayStart(partial []byte, client bool) bool {
	if client {
		return isPrefixFold(partial, "PORT ") || isPrefixFold(partial, "EPRT ")
	}
	return isPrefix(partial, "227 ") || isPrefix(partial, "229 ")
}

func isPrefixFold(b []byte, s string) bool {
	n := min(len(b), len(s))
	for i := 0; i < n; i++ {
		c := b[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

func isPrefix(b []byte, s string) bool {
	n := min(len(b), len(s))
	return string(b[:n]) == s[:n]
}

func skipSpaces(line []byte, i int) int {
	for i < len(line) && line[i] == ' ' {
		i++
	}
	return i
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isDelim: RFC 2428 — "The delimiter character MUST be one of the ASCII
// characters in range 33-126 inclusive."
func isDelim(c byte) bool { return 33 <= c && c <= 126 && !isDigit(c) }
