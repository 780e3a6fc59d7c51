//go:build linux

package afxdp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"testing"

	"github.com/google/gopacket/layers"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// FuzzFilter runs both XDP programs on arbitrary frames and compares their
// verdicts with oracleVerdict. Needs root.
func FuzzFilter(f *testing.F) {
	udp, tcp := layers.IPProtocolUDP, layers.IPProtocolTCP
	for _, fr := range [][]byte{
		ipv4Frame(f, "203.0.113.1", "198.18.0.204", udp),
		ipv4Frame(f, "10.77.0.9", "203.0.113.1", tcp),
		ipv4Frame(f, "10.77.0.9", "10.77.0.1", udp, layers.EthernetTypeDot1Q),
		ipv4Frame(f, "10.88.0.5", "198.18.0.204", udp, layers.EthernetTypeQinQ),
		arpFrame(f, "10.77.0.9", "10.77.0.1"),
		ipv6Frame(f),
		make([]byte, ethLen),
	} {
		f.Add(fr)
	}
	r := newFilterRig(f)
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) < ethLen || len(frame) > 1500 {
			return
		}
		for _, role := range []Role{Outside, Inside} {
			want := oracleVerdict(frame, role, testFilter)
			if got := r.verdict(t, role, frame); got != want {
				t.Fatalf("%v: program %d, oracle %d for %x", role, got, want, frame)
			}
		}
	})
}

// FuzzNeighbourEvents feeds arbitrary netlink messages to the resolver's
// event handling: it must not panic, and parseNeigh must agree with the
// netlink package's decoder wherever that one does not panic itself.
func FuzzNeighbourEvents(f *testing.F) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	f.Add(neighMsg(unix.RTM_NEWNEIGH, netlink.Neigh{LinkIndex: 7, State: netlink.NUD_REACHABLE, IP: net.IPv4(198, 18, 0, 1), HardwareAddr: mac}))
	f.Add(neighMsg(unix.RTM_DELNEIGH, netlink.Neigh{LinkIndex: 7, State: netlink.NUD_STALE, IP: net.IPv4(198, 18, 0, 1), HardwareAddr: mac}))
	f.Add(neighMsg(unix.RTM_NEWNEIGH, netlink.Neigh{LinkIndex: 7, State: netlink.NUD_INCOMPLETE, IP: net.IPv4(198, 18, 0, 2)}))
	f.Add(neighMsg(unix.RTM_NEWNEIGH, netlink.Neigh{LinkIndex: 8, State: netlink.NUD_REACHABLE, IP: net.IPv4(198, 18, 0, 3), HardwareAddr: mac}))
	f.Add(addrMsg())
	f.Fuzz(func(t *testing.T, b []byte) {
		r := &resolver{ifindex: 7, macs: map[uint32][6]byte{}}
		r.handle(b)
		if _, ok := r.macs[0]; ok {
			t.Fatal("recorded 0.0.0.0")
		}
		if len(b) < 16 {
			return
		}
		body := b[16:]
		ev, ok := parseNeigh(body)
		n, err := deserializeNoPanic(body)
		if !ok || err != nil || n == nil {
			return
		}
		if ev.ifindex != n.LinkIndex || ev.state != n.State {
			t.Fatalf("ifindex/state %d/%d, netlink says %d/%d", ev.ifindex, ev.state, n.LinkIndex, n.State)
		}
		if ip := n.IP.To4(); body[0] == unix.AF_INET && len(n.IP) == 4 && ev.addr != ip4u(ip) {
			t.Fatalf("address %v, netlink says %v", netipAddr(ev.addr), n.IP)
		}
		if len(n.HardwareAddr) == 6 && (!ev.hasMAC || !bytes.Equal(ev.mac[:], n.HardwareAddr)) {
			t.Fatalf("MAC %v (%v), netlink says %v", ev.mac, ev.hasMAC, n.HardwareAddr)
		}
	})
}

func ip4u(ip net.IP) uint32 {
	return uint32(ip[0])<<24 | uint32(ip[1])<<16 | uint32(ip[2])<<8 | uint32(ip[3])
}

func deserializeNoPanic(b []byte) (n *netlink.Neigh, err error) {
	defer func() {
		if recover() != nil {
			n, err = nil, errors.New("netlink decoder panicked")
		}
	}()
	return netlink.NeighDeserialize(b)
}

// TestNeighbourEvents checks the event parser on well-formed messages.
func TestNeighbourEvents(t *testing.T) {
	r := &resolver{ifindex: 7, macs: map[uint32][6]byte{}}
	nb := func(typ uint16, link, state int, addr string, hw net.HardwareAddr) []byte {
		n := netlink.Neigh{LinkIndex: link, State: state, IP: net.ParseIP(addr), HardwareAddr: hw}
		return neighMsg(typ, n)
	}
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	tests := []struct {
		name      string
		msg       []byte
		addr      string
		wantKnown bool
		wantDirty bool
	}{
		{"reachable", nb(unix.RTM_NEWNEIGH, 7, netlink.NUD_REACHABLE, "198.18.0.1", mac), "198.18.0.1", true, true},
		{"same again", nb(unix.RTM_NEWNEIGH, 7, netlink.NUD_REACHABLE, "198.18.0.1", mac), "198.18.0.1", true, false},
		{"stale is still usable", nb(unix.RTM_NEWNEIGH, 7, netlink.NUD_STALE, "198.18.0.1", mac), "198.18.0.1", true, false},
		{"failed forgets", nb(unix.RTM_NEWNEIGH, 7, netlink.NUD_FAILED, "198.18.0.1", nil), "198.18.0.1", false, true},
		{"incomplete is not usable", nb(unix.RTM_NEWNEIGH, 7, netlink.NUD_INCOMPLETE, "198.18.0.2", nil), "198.18.0.2", false, false},
		{"other interface", nb(unix.RTM_NEWNEIGH, 8, netlink.NUD_REACHABLE, "198.18.0.3", mac), "198.18.0.3", false, false},
		{"permanent", nb(unix.RTM_NEWNEIGH, 7, netlink.NUD_PERMANENT, "198.18.0.4", mac), "198.18.0.4", true, true},
		{"deleted", nb(unix.RTM_DELNEIGH, 7, netlink.NUD_REACHABLE, "198.18.0.4", mac), "198.18.0.4", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, dirty := r.handle(tt.msg)
			_, known := r.macs[ip(tt.addr)]
			if known != tt.wantKnown || dirty != tt.wantDirty {
				t.Fatalf("known %v dirty %v; want %v %v", known, dirty, tt.wantKnown, tt.wantDirty)
			}
		})
	}
	if resync, _ := r.handle(addrMsg()); !resync {
		t.Fatal("address change did not ask for a resync")
	}
}

// neighMsg encodes an RTM_NEWNEIGH or RTM_DELNEIGH message.
func neighMsg(typ uint16, n netlink.Neigh) []byte {
	body := []byte{unix.AF_INET, 0, 0, 0}
	body = binary.LittleEndian.AppendUint32(body, uint32(n.LinkIndex))
	body = binary.LittleEndian.AppendUint16(body, uint16(n.State))
	body = append(body, 0, 0)
	attr := func(typ uint16, v []byte) {
		body = binary.LittleEndian.AppendUint16(body, uint16(4+len(v)))
		body = binary.LittleEndian.AppendUint16(body, typ)
		body = append(body, v...)
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
	}
	attr(unix.NDA_DST, n.IP.To4())
	if n.HardwareAddr != nil {
		attr(unix.NDA_LLADDR, n.HardwareAddr)
	}
	h := make([]byte, 16)
	binary.LittleEndian.PutUint32(h, uint32(16+len(body)))
	binary.LittleEndian.PutUint16(h[4:], typ)
	return append(h, body...)
}

// addrMsg encodes an RTM_NEWADDR message (its body does not matter).
func addrMsg() []byte {
	h := make([]byte, 16+8)
	binary.LittleEndian.PutUint32(h, uint32(len(h)))
	binary.LittleEndian.PutUint16(h[4:], unix.RTM_NEWADDR)
	return h
}
