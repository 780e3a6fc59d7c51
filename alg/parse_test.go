package alg

import "testing"

func TestParseCommand(t *testing.T) {
	a := uint32(10)<<24 | 5
	tests := []struct {
		name  string
		line  string
		kind  kind
		ok    bool
		addr  uint32
		port  uint16
		span  string
		delim byte
	}{
		{name: "PORT", line: "PORT 10,0,0,5,195,80", kind: kindPORT, ok: true, addr: a, port: 195<<8 | 80, span: "10,0,0,5,195,80"},
		{name: "PORT lower case", line: "port 10,0,0,5,4,1", kind: kindPORT, ok: true, addr: a, port: 4<<8 | 1, span: "10,0,0,5,4,1"},
		{name: "PORT mixed case, extra spaces", line: "PoRt   10,0,0,5,4,1  ", kind: kindPORT, ok: true, addr: a, port: 4<<8 | 1, span: "10,0,0,5,4,1"},
		{name: "PORT leading zeros", line: "PORT 010,000,000,005,004,001", kind: kindPORT, ok: true, addr: a, port: 4<<8 | 1, span: "010,000,000,005,004,001"},
		{name: "PORT max", line: "PORT 255,255,255,255,255,255", kind: kindPORT, ok: true, addr: 0xffffffff, port: 0xffff, span: "255,255,255,255,255,255"},
		{name: "PORT five numbers", line: "PORT 10,0,0,5,4", kind: kindPORT},
		{name: "PORT seven numbers", line: "PORT 10,0,0,5,4,1,2", kind: kindPORT},
		{name: "PORT 256", line: "PORT 10,0,0,256,4,1", kind: kindPORT},
		{name: "PORT four digits", line: "PORT 10,0,0,0005,4,1", kind: kindPORT},
		{name: "PORT spaces in list", line: "PORT 10, 0,0,5,4,1", kind: kindPORT},
		{name: "PORT trailing text", line: "PORT 10,0,0,5,4,1 x", kind: kindPORT},
		{name: "PORT empty", line: "PORT ", kind: kindPORT},
		{name: "PORT no space", line: "PORT10,0,0,5,4,1", kind: kindNone, ok: true},
		{name: "PORTS is another verb", line: "PORTS 10,0,0,5,4,1", kind: kindNone, ok: true},
		{name: "EPRT", line: "EPRT |1|10.0.0.5|50000|", kind: kindEPRT, ok: true, addr: a, port: 50000, span: "|1|10.0.0.5|50000|", delim: '|'},
		{name: "EPRT other delimiter", line: "eprt !1!10.0.0.5!50000!", kind: kindEPRT, ok: true, addr: a, port: 50000, span: "!1!10.0.0.5!50000!", delim: '!'},
		{name: "EPRT IPv6", line: "EPRT |2|::1|50000|", kind: kindEPRT},
		{name: "EPRT mixed delimiters", line: "EPRT |1!10.0.0.5|50000|", kind: kindEPRT},
		{name: "EPRT port too big", line: "EPRT |1|10.0.0.5|65536|", kind: kindEPRT},
		{name: "EPRT three octets", line: "EPRT |1|10.0.5|50000|", kind: kindEPRT},
		{name: "EPRT unterminated", line: "EPRT |1|10.0.0.5|50000", kind: kindEPRT},
		{name: "EPRT digit delimiter", line: "EPRT 1110.0.0.5150001", kind: kindEPRT},
		{name: "USER", line: "USER anonymous", kind: kindNone, ok: true},
		{name: "PASV", line: "PASV", kind: kindNone, ok: true},
		{name: "EPSV ALL", line: "EPSV ALL", kind: kindNone, ok: true},
		{name: "empty", line: "", kind: kindNone, ok: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var e endpoint
			ok := parseCommand([]byte(tc.line), &e)
			checkEndpoint(t, tc.line, e, ok, tc.kind, tc.ok, tc.addr, tc.port, tc.span, tc.delim)
		})
	}
}

func TestParseReply(t *testing.T) {
	a := uint32(10)<<24 | 5
	tests := []struct {
		name  string
		line  string
		kind  kind
		ok    bool
		addr  uint32
		port  uint16
		span  string
		delim byte
	}{
		{name: "227 parentheses", line: "227 Entering Passive Mode (10,0,0,5,195,80).", kind: kind227, ok: true, addr: a, port: 195<<8 | 80, span: "10,0,0,5,195,80"},
		{name: "227 without parentheses", line: "227 Entering Passive Mode 10,0,0,5,195,80", kind: kind227, ok: true, addr: a, port: 195<<8 | 80, span: "10,0,0,5,195,80"},
		{name: "227 equals form", line: "227 =10,0,0,5,195,80", kind: kind227, ok: true, addr: a, port: 195<<8 | 80, span: "10,0,0,5,195,80"},
		{name: "227 bare numbers", line: "227 10,0,0,5,195,80", kind: kind227, ok: true, addr: a, port: 195<<8 | 80, span: "10,0,0,5,195,80"},
		{name: "227 no numbers", line: "227 Entering Passive Mode", kind: kind227},
		{name: "227 short list", line: "227 Entering Passive Mode (10,0,0,5,195)", kind: kind227},
		{name: "227 digit in text first", line: "227 Mode 2 (10,0,0,5,195,80)", kind: kind227, ok: true, addr: a, port: 195<<8 | 80, span: "10,0,0,5,195,80"},
		{name: "227 numbers in text first", line: "227 Entering Passive Mode v1.2 at 12:00 (10,0,0,5,195,80).", kind: kind227, ok: true, addr: a, port: 195<<8 | 80, span: "10,0,0,5,195,80"},
		{name: "227- continuation is not a reply", line: "227-Entering Passive Mode (10,0,0,5,195,80)", kind: kindNone, ok: true},
		{name: "229", line: "229 Entering Extended Passive Mode (|||50000|)", kind: kind229, ok: true, port: 50000, span: "50000", delim: '|'},
		{name: "229 other delimiter", line: "229 Extended (!!!50000!)", kind: kind229, ok: true, port: 50000, span: "50000", delim: '!'},
		{name: "229 no parenthesis", line: "229 Entering Extended Passive Mode |||50000|", kind: kind229},
		{name: "229 unclosed", line: "229 Entering Extended Passive Mode (|||50000|", kind: kind229},
		{name: "229 address given", line: "229 Entering Extended Passive Mode (|1|10.0.0.5|50000|)", kind: kind229},
		{name: "229 port too big", line: "229 (|||70000|)", kind: kind229},
		{name: "220 banner", line: "220 (vsFTPd 3.0.3)", kind: kindNone, ok: true},
		{name: "200 PORT ok", line: "200 PORT command successful. Consider using PASV.", kind: kindNone, ok: true},
		{name: "short", line: "22", kind: kindNone, ok: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var e endpoint
			ok := parseReply([]byte(tc.line), &e)
			checkEndpoint(t, tc.line, e, ok, tc.kind, tc.ok, tc.addr, tc.port, tc.span, tc.delim)
		})
	}
}

func checkEndpoint(t *testing.T, line string, e endpoint, ok bool, k kind, wantOK bool, addr uint32, port uint16, span string, delim byte) {
	t.Helper()
	if e.kind != k || ok != wantOK {
		t.Fatalf("%q: kind %v ok %v, want %v %v", line, e.kind, ok, k, wantOK)
	}
	if !ok || k == kindNone {
		return
	}
	if e.addr != addr || e.port != port || e.delim != delim {
		t.Errorf("%q: addr %s port %d delim %q, want %s %d %q", line, ipStr(e.addr), e.port, e.delim, ipStr(addr), port, delim)
	}
	if got := line[e.start:e.end]; got != span {
		t.Errorf("%q: span %q, want %q", line, got, span)
	}
}

func TestAppendEndpoint(t *testing.T) {
	pub := uint32(198)<<24 | 18<<16 | 204
	tests := []struct {
		name string
		e    endpoint
		want string
	}{
		{"PORT", endpoint{kind: kindPORT}, "198,18,0,204,195,80"},
		{"227", endpoint{kind: kind227}, "198,18,0,204,195,80"},
		{"EPRT", endpoint{kind: kindEPRT, delim: '|'}, "|1|198.18.0.204|50000|"},
		{"EPRT delimiter kept", endpoint{kind: kindEPRT, delim: '#'}, "#1#198.18.0.204#50000#"},
		{"229", endpoint{kind: kind229, delim: '|'}, "50000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			port := uint16(50000)
			if tc.e.kind == kindPORT || tc.e.kind == kind227 {
				port = 195<<8 | 80
			}
			if got := string(appendEndpoint(nil, &tc.e, pub, port)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMayStart(t *testing.T) {
	tests := []struct {
		name    string
		partial string
		client  bool
		want    bool
	}{
		{"client empty", "", true, true},
		{"client P", "P", true, true},
		{"client por", "por", true, true},
		{"client PORT ", "PORT ", true, true},
		{"client PORT 1", "PORT 1,2", true, true},
		{"client E", "E", true, true},
		{"client EPR", "EPR", true, true},
		{"client EPSV", "EPSV", true, false},
		{"client PASV", "PASV", true, false},
		{"client USER", "U", true, false},
		{"client PORTS", "PORTS", true, false},
		{"server 2", "2", false, true},
		{"server 22", "22", false, true},
		{"server 227", "227", false, true},
		{"server 229 ", "229 (", false, true},
		{"server 220", "220", false, false},
		{"server 227-", "227-", false, false},
		{"server 1", "1", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := mayStart([]byte(tc.partial), tc.client); got != tc.want {
				t.Errorf("mayStart(%q) = %v", tc.partial, got)
			}
		})
	}
}
