package pipeline

import (
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/ip4defrag"
	"github.com/google/gopacket/layers"

	. "github.com/fastnat/fastnat/internal/testutil"
)

// TestFTPFragmentedReply: the inside server's 227 reply reaches the NAT
// in IPv4 fragments, in order, out of order and with the first fragment
// last (held until it comes). The ALG reassembles it and rewrites the
// inside address; it leaves in fragments no larger than those it came in
// (as Linux refragments to frag_max_size), which reassemble, checksums
// right, to the rewritten reply; the control connection goes on.
func TestFTPFragmentedReply(t *testing.T) {
	const reply = "227 Entering Passive Mode (10,77,0,226,195,80).\r\n"
	const want = "227 Entering Passive Mode (198,18,0,204,195,80).\r\n"
	for _, tc := range []struct {
		name  string
		order []int
	}{
		{"in order", []int{0, 1, 2}},
		{"out of order", []int{1, 0, 2}},
		{"first last", []int{2, 1, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newFTPRig(t, mapping9091())
			c := serverInside(t, r)
			c.say(t, true, "PASV\r\n")
			s, cl := &c.server, &c.client
			frags := Fragment(t, TCP(t, s.addr, s.peer, ACK|PSH, s.seq, s.ack, []byte(reply)), 24)
			if len(frags) != len(tc.order) {
				t.Fatalf("%d fragments", len(frags))
			}
			largest := 0
			for _, i := range tc.order {
				largest = max(largest, int(binary.BigEndian.Uint16(frags[i][16:])))
				if !c.sport.Inject(frags[i]) {
					t.Fatal("pool exhausted")
				}
			}
			out, payload, seq := c.receiveDatagram(t)
			if payload != want {
				t.Fatalf("reply arrived as %q, want %q", payload, want)
			}
			if seq != cl.ack {
				t.Fatalf("reply arrived with seq %d, client expects %d", seq, cl.ack)
			}
			for _, f := range out {
				if n := int(binary.BigEndian.Uint16(f[16:])); n > largest {
					t.Errorf("fragment of %d bytes out, the largest in was %d", n, largest)
				}
			}
			if len(out) < 2 {
				t.Errorf("reassembled reply left in %d frame, want fragments again", len(out))
			}
			if st := r.ftp.Stats().Total; st.Reassembled != 1 || st.FragDropped != 0 || st.Rewritten != 1 {
				t.Errorf("alg counters %+v", st)
			}
			if n := r.w.Counters().Drop[DropALGVerdict].Load(); n != 0 {
				t.Errorf("%d alg drops", n)
			}
			s.seq += uint32(len(reply))
			cl.ack = seq + uint32(len(payload))
			a := r.exchange(c.cport, c.sport, TCP(t, cl.addr, cl.peer, ACK, cl.seq, cl.ack, nil))
			if a.TCP.Ack != s.seq {
				t.Fatalf("ack arrived as %d, server's next seq is %d", a.TCP.Ack, s.seq)
			}
			// No hang: the stream goes on both ways.
			c.say(t, true, "RETR file\r\n")
			c.say(t, false, "150 Opening BINARY mode data connection\r\n")
		})
	}
}

// receiveDatagram polls until the frames leaving towards the client make
// one whole datagram, and returns them with its TCP payload and sequence
// number; their checksums are checked on the reassembled datagram.
func (c *ctlConn) receiveDatagram(t *testing.T) (frames [][]byte, payload string, seq uint32) {
	t.Helper()
	defrag := ip4defrag.NewIPv4Defragmenter()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c.r.w.Poll()
		for _, f := range c.cport.Sent() {
			frames = append(frames, slices.Clone(f))
			p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
			ip, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			if !ok {
				t.Fatal("frame without IPv4")
			}
			whole, err := defrag.DefragIPv4(ip)
			if err != nil {
				t.Fatalf("defrag: %v", err)
			}
			if whole == nil {
				continue
			}
			CheckReassembled(t, frames)
			tp := gopacket.NewPacket(whole.Payload, layers.LayerTypeTCP, gopacket.Default)
			tcp, ok := tp.Layer(layers.LayerTypeTCP).(*layers.TCP)
			if !ok {
				t.Fatal("reassembled datagram without TCP")
			}
			return frames, string(tcp.Payload), tcp.Seq
		}
		time.Sleep(50 * time.Microsecond)
	}
	t.Fatalf("no whole datagram: %d frames; drops: %s", len(frames), c.r.drops())
	return nil, "", 0
}
