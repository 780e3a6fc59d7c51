package e2e

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/fastnat/fastnat/internal/testnet"
)

// TestForgedAckDuringTransfer, through fastnat and through the kernel's
// NAT twin (with the usual `ct state invalid drop`): while the outside
// peer sends 8 MiB to the inside host, data segments forged from the
// peer's address and port, at a sequence number inside the window but
// acknowledging data the inside host never sent, are dropped — counted
// as tcp_ack_out_of_window by fastnat, as INVALID by conntrack ("ACK is
// over upper bound") — and never reach the inside host, while the
// transfer, whose own segments pass the same checks, completes with its
// sha256 intact.
func TestForgedAckDuringTransfer(t *testing.T) {
	bothRouters(t, forgedAckTransfer)
}

func forgedAckTransfer(t *testing.T, r router) {
	c := openForgeryConn(t, r)
	var counted func(n uint64)
	if r.name == fastnatRouter.name {
		sock := fastnatSocket(t, c.topo)
		counted = func(n uint64) { waitDrop(t, sock, "nat_tcp_ack_out_of_window", n) }
	} else {
		counted = kernelDropInvalid(t, c.topo)
	}

	const size, chunk = 8 << 20, 32 << 10
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	want := sha256.Sum256(data)
	sent := make(chan error, 1)
	go func() {
		// Paced, so that the forgeries land while data is in flight.
		for off := 0; off < size; off += chunk {
			if _, err := c.outside.Write(data[off : off+chunk]); err != nil {
				sent <- err
				return
			}
			time.Sleep(3 * time.Millisecond)
		}
		sent <- nil
	}()
	got := make(chan [32]byte, 1)
	readErr := make(chan error, 1)
	go func() {
		h := sha256.New()
		_ = c.inside.SetReadDeadline(time.Now().Add(60 * time.Second))
		if _, err := io.CopyN(h, c.inside, size); err != nil {
			readErr <- err
			return
		}
		var sum [32]byte
		copy(sum[:], h.Sum(nil))
		got <- sum
	}()

	marker := []byte("FORGED ACK PAYLOAD")
	const forgeries = 20
	for i := range forgeries {
		time.Sleep(30 * time.Millisecond)
		seg := recentPeerData(t, c.capture, c)
		// In the window (where the peer's data stands now, or a few
		// segments behind it), acknowledging 1 MiB to 513 MiB past what
		// the inside host has sent: over conntrack's upper bound, never
		// under its lower one.
		forgedTCP := *seg.tcp
		forgedTCP.Ack += 1<<20 + rand.Uint32N(1<<29)
		seg.tcp = &forgedTCP
		sendForged(t, c.topo, seg, seg.next, layers.TCP{ACK: true, PSH: true}, append(append([]byte(nil), marker...), byte('A'+i)))
	}
	if err := <-sent; err != nil {
		t.Fatalf("outside peer's write: %v", err)
	}
	select {
	case sum := <-got:
		if sum != want {
			t.Fatalf("the inside host received %x, sent %x", sum, want)
		}
	case err := <-readErr:
		t.Fatalf("inside host's read: %v", err)
	}
	roundTrip(t, c.inside, c.outside, "after the transfer")
	for _, fr := range c.insideCapture.Frames() {
		if !fr.Outgoing && bytes.Contains(fr.Data, marker) {
			t.Fatal("a forged segment reached the inside host")
		}
	}
	counted(forgeries)
}

// recentPeerData returns the newest data segment the outside peer sent
// on connection c, as the capture saw it: its end is in the window of
// the inside host.
func recentPeerData(t *testing.T, capture *testnet.Capture, c *forgeryConn) peerSegment {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		frames := capture.Frames()
		for i := len(frames) - 1; i >= 0 && i >= len(frames)-200; i-- {
			f := frames[i]
			p := gopacket.NewPacket(f.Data, layers.LayerTypeEthernet, gopacket.Default)
			eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
			if !f.Outgoing || eth == nil || ip == nil || tcp == nil || ip.Id == forgedIPID || len(tcp.Payload) == 0 ||
				!ip.SrcIP.Equal(c.server.Addr().AsSlice()) || uint16(tcp.SrcPort) != c.server.Port() {
				continue
			}
			return peerSegment{eth: eth, ip: ip, tcp: tcp, next: tcp.Seq + uint32(len(tcp.Payload))}
		}
	}
	t.Fatal("no data segment from the outside peer captured")
	return peerSegment{}
}

// kernelDropInvalidTable is the nftables table kernelDropInvalid adds.
const kernelDropInvalidTable = "fnt_drop_invalid"

// kernelDropInvalid adds the usual `ct state invalid drop` to the kernel
// twin's router, counted, in prerouting (after conntrack and DNAT): a
// segment conntrack finds INVALID is not translated, so it would
// otherwise go to the router's own stack, not the forward hook. It
// returns a function that waits until the rule has dropped n packets.
func kernelDropInvalid(t *testing.T, topo *testnet.Topology) func(n uint64) {
	t.Helper()
	ctx := testContext(t)
	cmd := testnet.Command(ctx, topo.Router, "nft", "-f", "-")
	cmd.Stdin = bytes.NewReader([]byte("table ip " + kernelDropInvalidTable + " {\n" +
		"\tchain prerouting {\n\t\ttype filter hook prerouting priority 0; policy accept;\n" +
		"\t\tct state invalid counter drop\n\t}\n}\n"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v: %s", err, out)
	}
	counter := regexp.MustCompile(`counter packets (\d+)`)
	return func(n uint64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			out, err := testnet.Command(ctx, topo.Router, "nft", "list", "table", "ip", kernelDropInvalidTable).CombinedOutput()
			if err != nil {
				t.Fatalf("nft list: %v: %s", err, out)
			}
			m := counter.FindSubmatch(out)
			if m == nil {
				t.Fatalf("no counter in:\n%s", out)
			}
			got, _ := strconv.ParseUint(string(m[1]), 10, 64)
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("conntrack's invalid drop counted %d packets, want %d", got, n)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
