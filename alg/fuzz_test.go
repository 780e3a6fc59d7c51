package alg

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/testutil"
)

var fuzzLines = []string{
	"PORT 10,0,0,5,195,80",
	"port 10,0,0,5,4,1   ",
	"EPRT |1|10.0.0.5|50000|",
	"EPRT !1!10.0.0.5!50000!",
	"EPRT |2|::1|50000|",
	"227 Entering Passive Mode (10,0,0,5,195,80).",
	"227 =10,0,0,5,195,80",
	"227 10,0,0,5,195,80",
	"229 Entering Extended Passive Mode (|||50000|)",
	"229 (###1#)",
	"PORT 999,0,0,5,195,80",
	"227 ",
	"229 (|||",
	"PORT 192,0,2,1,195,80",
	"PORT 10,0,0,5,0,21",
	"EPRT |1|192.0.2.1|50000|",
	"227 Entering Passive Mode (10,0,0,6,195,80)",
	"229 Entering Extended Passive Mode (|||21|)",
}

// FuzzParse: the command and reply parsers never panic, report spans
// inside the line, and what they read survives a rewrite: replacing the
// span by the endpoint's own text parses back to the same endpoint.
func FuzzParse(f *testing.F) {
	for _, l := range fuzzLines {
		f.Add([]byte(l), true)
		f.Add([]byte(l), false)
	}
	f.Fuzz(func(t *testing.T, line []byte, client bool) {
		parse := parseReply
		if client {
			parse = parseCommand
		}
		var e endpoint
		ok := parse(line, &e)
		if !ok || e.kind == kindNone {
			return
		}
		if e.start < 0 || e.start > e.end || e.end > len(line) {
			t.Fatalf("%q: span [%d,%d)", line, e.start, e.end)
		}
		txt := appendEndpoint(nil, &e, e.addr, e.port)
		again := append(append(append([]byte(nil), line[:e.start]...), txt...), line[e.end:]...)
		var e2 endpoint
		if !parse(again, &e2) || e2.kind != e.kind || e2.addr != e.addr || e2.port != e.port {
			t.Fatalf("%q rewritten as %q parses to %+v (ok %v), was %+v", line, again, e2, ok, e)
		}
		if got := again[e2.start:e2.end]; !bytes.Equal(got, txt) {
			t.Fatalf("%q: span %q after rewrite, want %q", again, got, txt)
		}
	})
}

// FuzzALG feeds arbitrary payload, cut into segments at fuzzed positions
// and each sent twice, the last with a FIN, through the ALG in a fuzzed
// direction and scenario: it must not panic, must keep every frame within
// its capacity with checksums gopacket agrees with — frames sent on, and
// answers and resets sent back — and must never deliver a byte two
// different ways.
func FuzzALG(f *testing.F) {
	for i, l := range fuzzLines {
		f.Add([]byte("220 hi\r\n"+l+"\r\nNOOP\r\n"), uint64(i*7919), uint8(i))
	}
	f.Add(bytes.Repeat([]byte("PORT 10,0,0,5,1,1"), 40), uint64(3), uint8(1))
	f.Add([]byte("211-x\r\n227 =10,0,0,5,1,1\r\n211 y\r\n229 (|||5000|)\r\n"), uint64(0x0102030405060708), uint8(6))
	f.Add([]byte("NOOP\r\nPORT 192,0,2,1,1,1\r\nLIST\r\nPORT 10,0,0,5,0,1\r\nPORT 10,0,0,5,4,1\r\nPORT 10,0"), uint64(0x10203), uint8(1))
	f.Fuzz(fuzzALGOne)
}

func fuzzALGOne(t *testing.T, data []byte, cuts uint64, mode uint8) {
	if len(data) > 1200 { // each byte may cost a frame and a gopacket decode
		return
	}
	scs := []func(testing.TB) scenario{serverInside, clientInside, clientInsideShrink, serverInsideShrink}
	h := newHarness(t, scs[mode%4](t), Config{AllowThirdParty: mode&8 != 0, MTU: 576 + int(mode>>4)*64})
	h.handshake(isnC, isnS)
	dir := flowtable.Dir(mode >> 2 & 1)
	isn, peer := isnOf(dir), isnOf(1-dir)
	r := newRcvr(t, isn)
	var seed [8]byte
	binary.LittleEndian.PutUint64(seed[:], cuts)
	for off, k := 0, 0; off < len(data); k++ {
		n := 1 + int(seed[k%8])*(k/8+1)%700
		end := min(off+n, len(data))
		flags := testutil.ACK
		if end == len(data) {
			flags |= testutil.FIN
		}
		for rep := 0; rep < 2; rep++ {
			fr := h.frame(dir, flags, isn+1+uint32(off), peer+1, data[off:end])
			it := h.run(dir, fr)
			if n := len(it.Buf); n > cap(fr) || n < 54 {
				t.Fatalf("frame length %d, capacity %d", n, cap(fr))
			}
			if it.Verdict >= NumVerdicts {
				t.Fatalf("verdict %d", it.Verdict)
			}
			switch it.Verdict {
			case Forward:
				if s := decodeSeg(t, it.Buf); s.flags&testutil.RST == 0 {
					r.add(s)
				}
			case Back:
				decodeSeg(t, it.Buf)
			}
			if it.Back != nil {
				decodeSeg(t, it.Back)
			}
		}
		off = end
	}
}
