package pipeline

import (
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/ip4defrag"
	"github.com/google/gopacket/layers"

	. "github.com/fastnat/fastnat/internal/testutil"
)

// TestFTPFragmented: the inside server's 227 reply, or the inside
// client's PORT command, reaches the NAT in IPv4 fragments, in order, out
// of order and with the first fragment last (held until it comes). The
// ALG reassembles it and rewrites the inside address; it leaves in
// fragments no larger than those it came in (as Linux refragments to
// frag_max_size), which reassemble, checksums right, to the rewritten
// line; the control connection goes on both ways.
func TestFTPFragmented(t *testing.T) {
	for _, sc := range []struct {
		name, line string
		open       func(t *testing.T, r *ftpRig) (c *ctlConn, toServer bool)
		check      func(t *testing.T, got string)
	}{
		{"227 from inside server", "227 Entering Passive Mode (10,77,0,226,195,80).\r\n",
			func(t *testing.T, r *ftpRig) (*ctlConn, bool) {
				c := serverInside(t, r)
				c.say(t, true, "PASV\r\n")
				return c, false
			},
			func(t *testing.T, got string) {
				if want := "227 Entering Passive Mode (198,18,0,204,195,80).\r\n"; got != want {
					t.Fatalf("reply arrived as %q, want %q", got, want)
				}
			}},
		{"PORT from inside client", "TYPE I\r\nMODE S\r\nPORT 10,77,0,5,156,65\r\n",
			func(t *testing.T, r *ftpRig) (*ctlConn, bool) {
				c := &ctlConn{r: r, cport: r.in, sport: r.out,
					client: tcpPeer{addr: inClient + ":40000", peer: remote1 + ":21", seq: 1000},
					server: tcpPeer{seq: 5000, addr: remote1 + ":21"}}
				c.handshake(t)
				c.say(t, false, "220 outside server\r\n")
				return c, true
			},
			func(t *testing.T, got string) {
				var p1, p2 int
				if _, err := fmt.Sscanf(got, "TYPE I\r\nMODE S\r\nPORT 198,18,0,204,%d,%d\r\n", &p1, &p2); err != nil {
					t.Fatalf("PORT arrived as %q", got)
				}
			}},
	} {
		for _, tc := range []struct {
			name  string
			order []int
		}{
			{"in order", []int{0, 1, 2}},
			{"out of order", []int{1, 0, 2}},
			{"first last", []int{2, 1, 0}},
		} {
			t.Run(sc.name+"/"+tc.name, func(t *testing.T) {
				r := newFTPRig(t, mapping9091())
				c, toServer := sc.open(t, r)
				from, to, in, out := &c.server, &c.client, c.sport, c.cport
				if toServer {
					from, to, in, out = &c.client, &c.server, c.cport, c.sport
				}
				frags := Fragment(t, TCP(t, from.addr, from.peer, ACK|PSH, from.seq, from.ack, []byte(sc.line)), 24)
				if len(frags) != len(tc.order) {
					t.Fatalf("%d fragments", len(frags))
				}
				largest := 0
				for _, i := range tc.order {
					largest = max(largest, int(binary.BigEndian.Uint16(frags[i][16:])))
					if !in.Inject(frags[i]) {
						t.Fatal("pool exhausted")
					}
				}
				frames, payload, seq := r.receiveDatagram(t, out)
				sc.check(t, payload)
				if seq != to.ack {
					t.Fatalf("arrived with seq %d, receiver expects %d", seq, to.ack)
				}
				for _, f := range frames {
					if n := int(binary.BigEndian.Uint16(f[16:])); n > largest {
						t.Errorf("fragment of %d bytes out, the largest in was %d", n, largest)
					}
				}
				if len(frames) < 2 {
					t.Errorf("reassembled segment left in %d frame, want fragments again", len(frames))
				}
				if st := r.ftp.Stats().Total; st.Reassembled != 1 || st.FragDropped != 0 || st.Rewritten != 1 {
					t.Errorf("alg counters %+v", st)
				}
				if n := r.w.Counters().Drop[DropALGVerdict].Load(); n != 0 {
					t.Errorf("%d alg drops", n)
				}
				from.seq += uint32(len(sc.line))
				to.ack = seq + uint32(len(payload))
				a := r.exchange(out, in, TCP(t, to.addr, to.peer, ACK, to.seq, to.ack, nil))
				if a.TCP.Ack != from.seq {
					t.Fatalf("ack arrived as %d, sender's next seq is %d", a.TCP.Ack, from.seq)
				}
				// No hang: the stream goes on both ways.
				c.say(t, toServer, "NOOP\r\n")
				c.say(t, !toServer, "200 NOOP ok\r\n")
			})
		}
	}
}

// receiveDatagram polls until the frames leaving by port out make one
// whole datagram, and returns them with its TCP payload and sequence
// number; their checksums are checked on the reassembled datagram.
func (r *ftpRig) receiveDatagram(t *testing.T, out *MemPort) (frames [][]byte, payload string, seq uint32) {
	t.Helper()
	defrag := ip4defrag.NewIPv4Defragmenter()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		r.w.Poll()
		for _, f := range out.Sent() {
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
	t.Fatalf("no whole datagram: %d frames; drops: %s", len(frames), r.drops())
	return nil, "", 0
}
