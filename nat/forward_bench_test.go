package nat

import (
	"testing"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/packet"
	"github.com/google/gopacket/layers"
)

// BenchmarkForwardCommonTCP: the established-flow fast path over bursts
// of 32 data segments of one connection from outside, each carrying the
// Timestamps option as Linux sends it: what the tracker's window and
// acknowledgment checks cost per segment (the frames are restored from
// their templates before each burst, which the time includes).
func BenchmarkForwardCommonTCP(b *testing.B) {
	c := newValidConn(b)
	const burst = 32
	ts := []layers.TCPOption{{OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop},
		{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: make([]byte, 8)}}
	var tmpl [burst][]byte
	frames := make([]packet.Frame, burst)
	hits := make([]flowtable.Hit, burst)
	fwd := make([]Forwarded, burst)
	keys := make([]packet.Tuple, burst)
	for i := range tmpl {
		tmpl[i] = testutil.TCP(b, c.server, c.back, testutil.ACK, c.sNext+uint32(i*100), c.cNext, make([]byte, 100), ts...)
		frames[i].Buf = append([]byte(nil), tmpl[i]...)
		var p packet.Parsed
		if packet.Parse(frames[i].Buf, &p) != packet.OK {
			b.Fatal("frame does not parse")
		}
		keys[i] = p.Tuple
	}
	c.g.table.LookupBatch(keys, hits)
	if n := c.g.e.ForwardCommonBurst(frames, hits, Outside, c.g.now, fwd); n != burst {
		b.Fatalf("fast path took %d of %d", n, burst)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N / burst {
		for i := range frames {
			copy(frames[i].Buf, tmpl[i])
		}
		if c.g.e.ForwardCommonBurst(frames, hits, Outside, c.g.now, fwd) != burst {
			b.Fatal("fast path declined")
		}
	}
}
