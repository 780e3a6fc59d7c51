package natlog

import (
	"testing"

	"github.com/fastnat/fastnat/packet"
)

func TestSessionTuples(t *testing.T) {
	tcp := func(src string, sport uint16, dst string, dport uint16) packet.Tuple {
		return packet.Tuple{SrcAddr: ip(src), SrcPort: sport, DstAddr: ip(dst), DstPort: dport, Proto: packet.ProtoTCP}
	}
	for _, tc := range []struct {
		name                string
		orig, reply         packet.Tuple
		fromInside          bool
		wantInside, wantOut packet.Tuple
	}{
		{"nat outbound",
			tcp("10.77.0.5", 40000, "198.51.100.1", 80), tcp("198.51.100.1", 80, "198.18.0.204", 40123), true,
			tcp("10.77.0.5", 40000, "198.51.100.1", 80), tcp("198.18.0.204", 40123, "198.51.100.1", 80)},
		{"nat server",
			tcp("198.51.100.7", 51000, "198.18.0.204", 9091), tcp("10.77.0.226", 2021, "198.51.100.7", 51000), false,
			tcp("10.77.0.226", 2021, "198.51.100.7", 51000), tcp("198.18.0.204", 9091, "198.51.100.7", 51000)},
		{"hairpin: an inside client to a nat server, source translated too",
			tcp("10.77.0.5", 40000, "198.18.0.204", 9091), tcp("10.77.0.226", 2021, "198.18.0.204", 40123), true,
			tcp("10.77.0.5", 40000, "198.18.0.204", 9091), tcp("198.18.0.204", 40123, "10.77.0.226", 2021)},
	} {
		in, out := SessionTuples(tc.orig, tc.reply, tc.fromInside)
		if in != tc.wantInside || out != tc.wantOut {
			t.Errorf("%s: inside %v outside %v; want %v, %v", tc.name, in, out, tc.wantInside, tc.wantOut)
		}
	}
}
