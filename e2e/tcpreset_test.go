package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/fastnat/fastnat/internal/testnet"
	"github.com/fastnat/fastnat/metrics"
)

// TestFastnatForgedRST: an established TCP connection from inside to a
// server outside, through nat outbound. A RST, and then a FIN, forged
// from the outside namespace with a random sequence number far from the
// window change nothing — each is counted as tcp_out_of_window, the
// session stays ESTABLISHED with its packet counts as they were, and the
// connection carries on. So do forged data far ahead of the window and a
// XMAS segment (FIN|PSH|URG, no ACK) at the window, and neither reaches
// the inside host (forge; data far behind the window passes, as through
// conntrack). A RST at the receiver's next
// expected sequence number (RFC 5961 §3.2) resets the connection and
// closes the session.
func TestFastnatForgedRST(t *testing.T) {
	requireFastnat(t)
	c := openForgeryConn(t, fastnatRouter)
	topo, capture, inside, outside, server := c.topo, c.capture, c.inside, c.outside, c.server
	sock := fastnatSocket(t, topo)

	session := func() (state string, reply uint64) {
		t.Helper()
		out := fastnatShow(t, sock, "sessions", "--verbose")
		m := regexp.MustCompile(`(?m)^State: (\S+)$`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no session state in:\n%s", out)
		}
		_, r := traffic(t, out)
		return m[1], r[0]
	}
	if st, _ := session(); st != "TCP_ESTABLISHED" {
		t.Fatalf("session state %s after the handshake and a round trip", st)
	}

	// A RST, then a FIN, forged from the outside peer's address and port
	// with a random sequence number at least 2^30 from the window in both
	// directions: outside any window. The peer's next sequence number, the
	// public port and the MACs come from the last segment the peer sent.
	for i, forgery := range []struct {
		name  string
		flags layers.TCP
	}{
		{"RST", layers.TCP{RST: true}},
		{"FIN", layers.TCP{FIN: true, ACK: true}},
	} {
		t.Run("forged "+forgery.name+" out of window", func(t *testing.T) {
			seg := lastSegment(t, capture, server)
			_, replyBefore := session()
			forged := seg.next + 1<<30 + rand.Uint32N(1<<31)
			sendForged(t, topo, seg, forged, forgery.flags, nil)
			waitDrop(t, sock, "nat_tcp_out_of_window", uint64(i+1))
			if st, reply := session(); st != "TCP_ESTABLISHED" || reply != replyBefore {
				t.Fatalf("after a forged %s (seq %d, window at %d): session %s, %d packets from outside (was %d)",
					forgery.name, forged, seg.next, st, reply, replyBefore)
			}
			roundTrip(t, inside, outside, "after the forged "+forgery.name)
			if st, _ := session(); st != "TCP_ESTABLISHED" {
				t.Fatalf("session %s after traffic", st)
			}
		})
	}

	// Forged data ahead of the window and a XMAS segment are dropped and
	// counted, and the inside host sees neither; data far behind passes,
	// as through conntrack.
	drops := map[string]uint64{"nat_tcp_out_of_window": 2} // the RST and the FIN
	for _, f := range forgeries {
		forge(t, c, f, func(name, reason string) {
			_, replyBefore := session()
			drops[reason]++
			waitDrop(t, sock, reason, drops[reason])
			if st, reply := session(); st != "TCP_ESTABLISHED" || reply != replyBefore {
				t.Fatalf("after a forged %s: session %s, %d packets from outside (was %d)", name, st, reply, replyBefore)
			}
		})
	}

	// A RST exactly at RCV.NXT is the peer's own: the inside host resets
	// the connection and the session closes.
	seg := lastSegment(t, capture, server)
	sendForged(t, topo, seg, seg.next, layers.TCP{RST: true}, nil)
	_ = inside.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := inside.Read(make([]byte, 16)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("inside read after the in-window RST: %v, want connection reset", err)
	}
	if st, _ := session(); st != "TCP_CLOSED" {
		t.Fatalf("session %s after the in-window RST, want TCP_CLOSED", st)
	}
}

// TestKernelForgedSegments is the proof that forge expects what a Linux
// NAT does: conntrack (tcp_be_liberal=0) marks the data ahead of the
// window INVALID and tcp_error refuses the XMAS flags, so neither is
// translated to the inside host, and it ignores the data behind the
// window, which is. (Each gets a connection of its own: the kernel's
// router delivers what conntrack finds INVALID, untranslated, to its own
// stack, whose answer — a RST from the public address, once seen to end
// the real connection — is no part of what this test compares.)
func TestKernelForgedSegments(t *testing.T) {
	requireHarness(t)
	for _, f := range forgeries {
		forge(t, openForgeryConn(t, kernelRouter), f, nil)
	}
}

// forgeryConn is an established connection from the inside host to a
// server on the outside peer, through router r, with captures on the
// outside peer's link (what the peer sends) and the inside host's (what
// reaches it).
type forgeryConn struct {
	topo                   *testnet.Topology
	capture, insideCapture *testnet.Capture
	inside, outside        net.Conn // the inside host's end and the outside server's
	server                 netip.AddrPort
}

func openForgeryConn(t *testing.T, r router) *forgeryConn {
	t.Helper()
	ctx := testContext(t)
	topo := r.newTopology(t, false)
	r.setup(t, topo, false, nil)
	c := &forgeryConn{topo: topo, server: netip.AddrPortFrom(testnet.ClientAddr, 7100)}
	ln, err := testnet.ListenTCP(topo.Client, c.server)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	if c.capture, err = testnet.StartCapture(topo.Client, testnet.NodeLink); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.capture.Close() })
	if c.insideCapture, err = testnet.StartCapture(topo.Server, topo.ServerLink); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.insideCapture.Close() })
	if c.inside, err = testnet.DialTCP(ctx, topo.Server, c.server); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.inside.Close() })
	_ = ln.SetDeadline(time.Now().Add(10 * time.Second))
	if c.outside, err = ln.Accept(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.outside.Close() })
	roundTrip(t, c.inside, c.outside, "before")
	return c
}

// A forgery is a segment forged from the outside peer toward the inside
// host of a live connection, and the drop reason fastnat counts it as.
type forgery struct {
	// reason is the drop fastnat counts, or "" for a segment both
	// routers forward, untracked.
	name, reason string
	flags        layers.TCP
	data         bool // carries "FORGERY PAYLOAD: " and its name
	// off is how far from the peer's next sequence number: at least
	// 2^30 ahead (1) or behind (-1), at random, or at it (0).
	off int
	// ackOff is added to the peer's acknowledgment number (with ACK).
	ackOff uint32
}

// forgeries: data far ahead of the window, a XMAS segment (FIN|PSH|URG
// without ACK) at it, and data at it acknowledging 1 MiB the inside host
// never sent, which conntrack marks INVALID ("ACK is over upper bound")
// and fastnat drops; and data far behind the window, an old duplicate to
// the receiver, which conntrack (Linux 6.1 on) lets through untracked and
// so does fastnat.
var forgeries = []forgery{
	{"data ahead of the window", "nat_tcp_out_of_window", layers.TCP{ACK: true, PSH: true}, true, 1, 0},
	{"XMAS", "nat_tcp_bad_flags", layers.TCP{FIN: true, PSH: true, URG: true}, false, 0, 0},
	{"data acknowledging data not sent", "nat_tcp_ack_out_of_window", layers.TCP{ACK: true, PSH: true}, true, 0, 1 << 20},
	{"data behind the window", "", layers.TCP{ACK: true, PSH: true}, true, -1, 0},
}

// forge sends forgery f on connection c. For fastnat (counted not nil)
// counted waits until the drop is counted, and the connection must then
// still carry a line each way. The inside host's capture must show the
// last line to arrive from outside, and the forgery only if its reason is
// "".
func forge(t *testing.T, c *forgeryConn, f forgery, counted func(name, reason string)) {
	t.Helper()
	t.Run("forged "+f.name, func(t *testing.T) {
		seg := lastSegment(t, c.capture, c.server)
		seq := seg.next + uint32(f.off)*(1<<30+rand.Uint32N(1<<30))
		marker := []byte("FORGERY PAYLOAD: " + f.name)
		var payload []byte
		if f.data {
			payload = marker
		}
		if f.ackOff != 0 {
			forgedTCP := *seg.tcp
			forgedTCP.Ack += f.ackOff
			seg.tcp = &forgedTCP
		}
		sendForged(t, c.topo, seg, seq, f.flags, payload)
		line := "before"
		if counted != nil {
			if f.reason != "" {
				counted(f.name, f.reason)
			}
			line = "after the forged " + f.name
			roundTrip(t, c.inside, c.outside, line)
		} else {
			time.Sleep(300 * time.Millisecond)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			var sawLine, sawForged bool
			for _, fr := range c.insideCapture.Frames() {
				p := gopacket.NewPacket(fr.Data, layers.LayerTypeEthernet, gopacket.Default)
				tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
				if fr.Outgoing || tcp == nil {
					continue
				}
				switch {
				case f.data && bytes.Contains(tcp.Payload, marker), !f.data && tcp.FIN && tcp.URG && !tcp.ACK:
					if f.reason != "" {
						t.Fatalf("the forged %s reached the inside host: %v", f.name, tcp)
					}
					sawForged = true
				case bytes.Contains(tcp.Payload, []byte(line)):
					sawLine = true
				}
			}
			if sawLine && (sawForged || f.reason != "") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the inside host's capture missed the line %q (or the forgery, which passes: %v)", line, sawForged)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// roundTrip sends a line each way and checks it arrives.
func roundTrip(t *testing.T, a, b net.Conn, when string) {
	t.Helper()
	for _, c := range [][2]net.Conn{{a, b}, {b, a}} {
		msg := []byte("hello " + when + "\n")
		if _, err := c[0].Write(msg); err != nil {
			t.Fatalf("%s: write: %v", when, err)
		}
		got := make([]byte, len(msg))
		_ = c[1].SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c[1], got); err != nil || string(got) != string(msg) {
			t.Fatalf("%s: read %q, %v", when, got, err)
		}
	}
}

// peerSegment is what a forger needs to know of a connection: the last
// segment the outside peer sent and the sequence number after it.
type peerSegment struct {
	eth  *layers.Ethernet
	ip   *layers.IPv4
	tcp  *layers.TCP
	next uint32
}

// forgedIPID is the IPv4 identification of every forged segment, so that
// lastSegment tells them from the peer's own on the peer's link.
const forgedIPID = 0xf04d

// lastSegment returns the last TCP segment the capture saw leave from
// the outside peer at src, forgeries aside. The capture reads the link
// on a goroutine of its own, so it waits until there is one and the
// last has stayed the last for 100 ms.
func lastSegment(t *testing.T, c *testnet.Capture, src netip.AddrPort) peerSegment {
	t.Helper()
	var last, prev *peerSegment
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		prev, last = last, nil
		for _, f := range c.Frames() {
			p := gopacket.NewPacket(f.Data, layers.LayerTypeEthernet, gopacket.Default)
			eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
			if !f.Outgoing || eth == nil || ip == nil || tcp == nil || ip.Id == forgedIPID ||
				!ip.SrcIP.Equal(src.Addr().AsSlice()) || uint16(tcp.SrcPort) != src.Port() {
				continue
			}
			next := tcp.Seq + uint32(len(tcp.Payload))
			if tcp.SYN || tcp.FIN {
				next++
			}
			last = &peerSegment{eth: eth, ip: ip, tcp: tcp, next: next}
		}
		if last != nil && prev != nil && last.next == prev.next && last.tcp.Ack == prev.tcp.Ack {
			return *last
		}
		if time.Now().After(deadline) {
			t.Fatalf("no segment from %s captured, or none the last for 100 ms", src)
		}
	}
}

// sendForged injects, on the outside peer's link, a segment from the
// peer to the public endpoint of the connection with sequence number seq
// and the flags set in flags (a segment with ACK carries the peer's last
// acknowledgment number and window, as the peer's own would), carrying
// payload.
func sendForged(t *testing.T, topo *testnet.Topology, s peerSegment, seq uint32, flags layers.TCP, payload []byte) {
	t.Helper()
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: forgedIPID, Protocol: layers.IPProtocolTCP, SrcIP: s.ip.SrcIP, DstIP: s.ip.DstIP}
	tcp := &layers.TCP{SrcPort: s.tcp.SrcPort, DstPort: s.tcp.DstPort, Seq: seq,
		RST: flags.RST, FIN: flags.FIN, ACK: flags.ACK, PSH: flags.PSH, URG: flags.URG}
	if tcp.ACK {
		tcp.Ack, tcp.Window = s.tcp.Ack, s.tcp.Window
	}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	eth := &layers.Ethernet{SrcMAC: s.eth.SrcMAC, DstMAC: s.eth.DstMAC, EthernetType: layers.EthernetTypeIPv4}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	if _, err := testnet.SendFrames(topo.Client, testnet.NodeLink, [][]byte{buf.Bytes()}); err != nil {
		t.Fatal(err)
	}
}

// fastnatSocket returns the control socket of the topology's fastnat.
func fastnatSocket(t *testing.T, topo *testnet.Topology) string {
	t.Helper()
	for _, p := range topo.Processes() {
		if p.Name == fastnatBinary(t) {
			return controlSocket(t, p)
		}
	}
	t.Fatal("fastnat not among the topology's processes")
	return ""
}

// fastnatShow runs `fastnat show args...` against the daemon at sock.
func fastnatShow(t *testing.T, sock string, args ...string) string {
	t.Helper()
	code, out, errOut := fastnatCLI(t, append(append([]string{"show"}, args...), "--socket", sock)...)
	if code != 0 {
		t.Fatalf("fastnat show %v: exit %d: %s", args, code, errOut)
	}
	return out
}

// waitDrop waits until the workers have counted at least n drops of
// reason, summed over workers.
func waitDrop(t *testing.T, sock, reason string, n uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var s metrics.Snapshot
		if err := json.Unmarshal([]byte(fastnatShow(t, sock, "stats", "--json")), &s); err != nil {
			t.Fatal(err)
		}
		var got uint64
		for _, w := range s.Workers {
			got += w.Drops[reason]
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d %s drops counted, want %d", got, reason, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
