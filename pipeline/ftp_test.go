package pipeline

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fastnat/fastnat/alg"
	"github.com/fastnat/fastnat/flowtable"
	. "github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/nat"
	"github.com/fastnat/fastnat/packet"
	"github.com/fastnat/fastnat/portmap"
)

// ftpRig is a rig whose worker diverts FTP control sessions to a real ALG
// runner on its own goroutine.
type ftpRig struct {
	*rig
	ftp *alg.FTP
}

func newFTPRig(t *testing.T, mappings []portmap.Mapping) *ftpRig {
	t.Helper()
	rules := caseRules(t, true, 1024, 65535)
	rules.PortMap, _ = portmap.Build(mappings)
	link, err := NewALGLink(64)
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, rigOpts{rules: rules, alg: link})
	f, err := alg.New(alg.Config{Enabled: true}, r.table, r.nat)
	if err != nil {
		t.Fatal(err)
	}
	r.nat.OnSessionEnd(f.SessionEnded)
	run, err := alg.NewRunner(f, []*alg.Ring{link.To}, []*alg.Ring{link.From}, 16, func() flowtable.Time { return 100 })
	if err != nil {
		t.Fatal(err)
	}
	link.Wake = run.Wake
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { run.Run(stop); close(done) }()
	t.Cleanup(func() { close(stop); <-done })
	return &ftpRig{rig: r, ftp: f}
}

// exchange injects one frame and polls until exactly one frame leaves by
// the port want (the ALG answers asynchronously).
func (r *ftpRig) exchange(from, want *MemPort, frame []byte) *Decoded {
	r.t.Helper()
	if !from.Inject(frame) {
		r.t.Fatal("pool exhausted")
	}
	deadline := time.Now().Add(5 * time.Second)
	var got [][]byte
	for len(got) == 0 && time.Now().Before(deadline) {
		r.w.Poll()
		got = want.Sent()
		if len(got) == 0 {
			time.Sleep(50 * time.Microsecond)
		}
	}
	if len(got) != 1 {
		r.t.Fatalf("want 1 frame on %s, got %d; drops: %s", want.Name(), len(got), r.drops())
	}
	return Decode(r.t, got[0])
}

// tcpPeer is one end of a TCP connection in a test: it tracks its own
// sequence number and acknowledges what it last received.
type tcpPeer struct {
	addr     string // as this end addresses packets: its own source
	peer     string // and the destination it sends to
	seq, ack uint32
}

// ctlConn is an FTP control connection across the NAT: the end that
// connected (client) and the end that accepted (server), each with its
// own view of addresses.
type ctlConn struct {
	r              *ftpRig
	client, server tcpPeer
	cport, sport   *MemPort // ports the client and server sides inject on
}

func (c *ctlConn) handshake(t *testing.T) {
	t.Helper()
	d := c.r.exchange(c.cport, c.sport, TCP(t, c.client.addr, c.client.peer, SYN, c.client.seq, 0, nil))
	c.server.peer = d.Src()
	if c.server.addr == "" {
		c.server.addr = d.Dst()
	}
	c.client.seq++
	c.server.ack = d.TCP.Seq + 1
	d = c.r.exchange(c.sport, c.cport, TCP(t, c.server.addr, c.server.peer, SYN|ACK, c.server.seq, c.server.ack, nil))
	c.server.seq++
	c.client.ack = d.TCP.Seq + 1
	c.r.exchange(c.cport, c.sport, TCP(t, c.client.addr, c.client.peer, ACK, c.client.seq, c.client.ack, nil))
}

// say sends a line from the client (toServer) or the server and returns
// the payload that arrived, checking sequence continuity.
func (c *ctlConn) say(t *testing.T, toServer bool, line string) string {
	t.Helper()
	from, to, in, out := &c.client, &c.server, c.cport, c.sport
	if !toServer {
		from, to, in, out = &c.server, &c.client, c.sport, c.cport
	}
	d := c.r.exchange(in, out, TCP(t, from.addr, from.peer, ACK|PSH, from.seq, from.ack, []byte(line)))
	if d.TCP.Seq != to.ack {
		t.Fatalf("segment arrived with seq %d, receiver expects %d", d.TCP.Seq, to.ack)
	}
	from.seq += uint32(len(line))
	to.ack = d.TCP.Seq + uint32(len(d.TCP.Payload))
	// The receiver acknowledges; its ACK must arrive shifted back into the
	// sender's sequence space.
	a := c.r.exchange(out, in, TCP(t, to.addr, to.peer, ACK, to.seq, to.ack, nil))
	if a.TCP.Ack != from.seq {
		t.Fatalf("ack arrived as %d, sender's next seq is %d", a.TCP.Ack, from.seq)
	}
	return string(d.TCP.Payload)
}

func mapping9091() []portmap.Mapping {
	return []portmap.Mapping{{App: portmap.AppFTP, Port: 9091, Proto: packet.ProtoTCP}}
}

// serverInside opens the case's control connection: an outside client to
// public:9091, published as the inside server on 2021.
func serverInside(t *testing.T, r *ftpRig) *ctlConn {
	c := &ctlConn{r: r, cport: r.out, sport: r.in,
		client: tcpPeer{addr: remote1 + ":36755", peer: public + ":9091", seq: 1000},
		server: tcpPeer{seq: 5000}}
	c.handshake(t)
	if c.server.addr != inServer+":2021" {
		t.Fatalf("control connection reached %s", c.server.addr)
	}
	c.say(t, false, "220 fastnat test server\r\n")
	return c
}

func TestFTPServerInsidePassive(t *testing.T) {
	for _, mode := range []string{"PASV", "EPSV"} {
		t.Run(mode, func(t *testing.T) {
			r := newFTPRig(t, mapping9091())
			c := serverInside(t, r)
			c.say(t, true, mode+"\r\n")
			var got, want string
			if mode == "PASV" {
				got = c.say(t, false, "227 Entering Passive Mode (10,77,0,226,195,80).\r\n")
				want = "227 Entering Passive Mode (198,18,0,204,195,80).\r\n"
			} else {
				got = c.say(t, false, "229 Entering Extended Passive Mode (|||50000|)\r\n")
				want = "229 Entering Extended Passive Mode (|||50000|)\r\n"
			}
			if got != want {
				t.Fatalf("reply arrived as %q, want %q", got, want)
			}
			// The data connection works on the first try.
			d := r.exchange(r.out, r.in, TCP(t, remote1+":40001", public+":50000", SYN, 1, 0, nil))
			if d.Dst() != inServer+":50000" || d.Src() != remote1+":40001" {
				t.Fatalf("data SYN reached %s from %s", d.Dst(), d.Src())
			}
			back := r.exchange(r.in, r.out, TCP(t, inServer+":50000", remote1+":40001", SYN|ACK, 9, 2, nil))
			if back.Src() != public+":50000" {
				t.Fatalf("data SYN/ACK from %s", back.Src())
			}
			id, _, gen, ok := r.table.LookupGen(packetTuple(t, 6, remote1+":40001", public+":50000"))
			var ds flowtable.Session
			if !ok || !r.table.Read(id, gen, &ds) || ds.App != uint8(portmap.AppFTPData) || ds.ParentGen == 0 {
				t.Fatal("data session not labelled ftp-data with a parent")
			}
			// The control connection keeps its shifted sequence numbers.
			c.say(t, true, "RETR file\r\n")
			c.say(t, false, "150 Opening BINARY mode data connection\r\n")
		})
	}
}

func TestFTPServerInsideActive(t *testing.T) {
	for _, mode := range []string{"PORT", "EPRT"} {
		t.Run(mode, func(t *testing.T) {
			r := newFTPRig(t, mapping9091())
			c := serverInside(t, r)
			cmd := "PORT 198,18,0,1,156,65\r\n" // 40001
			if mode == "EPRT" {
				cmd = "EPRT |1|198.18.0.1|40001|\r\n"
			}
			if got := c.say(t, true, cmd); got != cmd {
				t.Fatalf("command arrived as %q", got)
			}
			c.say(t, false, "200 PORT command successful\r\n")
			// The server connects from its data port to the client.
			d := r.exchange(r.in, r.out, TCP(t, inServer+":20", remote1+":40001", SYN, 1, 0, nil))
			if d.Dst() != remote1+":40001" || !strings.HasPrefix(d.Src(), public+":") {
				t.Fatalf("active data SYN %s -> %s", d.Src(), d.Dst())
			}
			r.exchange(r.out, r.in, TCP(t, remote1+":40001", d.Src(), SYN|ACK, 7, 2, nil))
		})
	}
}

func TestFTPClientInsideActive(t *testing.T) {
	for _, mode := range []string{"PORT", "EPRT"} {
		t.Run(mode, func(t *testing.T) {
			r := newFTPRig(t, nil) // default: ftp on 21
			c := &ctlConn{r: r, cport: r.in, sport: r.out,
				client: tcpPeer{addr: inClient + ":40000", peer: remote1 + ":21", seq: 1000},
				server: tcpPeer{seq: 5000, addr: remote1 + ":21"}}
			c.handshake(t)
			c.say(t, false, "220 outside server\r\n")
			cmd := "PORT 10,77,0,5,156,65\r\n"
			if mode == "EPRT" {
				cmd = "EPRT |1|10.77.0.5|40001|\r\n"
			}
			got := c.say(t, true, cmd)
			var port int
			if mode == "PORT" {
				var p1, p2 int
				if _, err := fmt.Sscanf(got, "PORT 198,18,0,204,%d,%d\r\n", &p1, &p2); err != nil {
					t.Fatalf("PORT arrived as %q", got)
				}
				port = p1*256 + p2
			} else if _, err := fmt.Sscanf(got, "EPRT |1|198.18.0.204|%d|\r\n", &port); err != nil {
				t.Fatalf("EPRT arrived as %q", got)
			}
			c.say(t, false, "200 ok\r\n")
			d := r.exchange(r.out, r.in, TCP(t, remote1+":20", fmt.Sprintf("%s:%d", public, port), SYN, 1, 0, nil))
			if d.Dst() != inClient+":40001" {
				t.Fatalf("active data SYN reached %s", d.Dst())
			}
		})
	}
}

// TestFTPWithoutMappingFailsAsInTheCase reproduces the incident: the server
// listens on 2021, published on 9091, and no mapping names either port, so
// the 227 reply leaks the inside address and the data connection dies.
func TestFTPWithoutMappingFailsAsInTheCase(t *testing.T) {
	r := newFTPRig(t, nil)
	c := serverInside(t, r)
	c.say(t, true, "PASV\r\n")
	got := c.say(t, false, "227 Entering Passive Mode (10,77,0,226,195,80).\r\n")
	if !strings.Contains(got, "10,77,0,226") {
		t.Fatalf("reply rewritten without a mapping: %q", got)
	}
	// Nothing holds the port: the data SYN is refused with a reset, as
	// the kernel's NAT refuses it from its own stack.
	toIn, toOut := r.send(r.out, TCP(t, remote1+":40001", public+":50000", SYN, 1, 0, nil))
	if len(toIn) != 0 || len(toOut) != 1 {
		t.Fatalf("%d in, %d out, want a reset back; %s", len(toIn), len(toOut), r.drops())
	}
	if d := Decode(t, toOut[0]); d.TCP == nil || !d.TCP.RST || d.Src() != public+":50000" {
		t.Fatalf("answered %s -> %s, want a reset from %s:50000", d.Src(), d.Dst(), public)
	}
	if r.verdicts(nat.DropUnsolicited) != 1 {
		t.Fatalf("want the data SYN counted as unsolicited; %s", r.drops())
	}
}

// TestFTPMappingOnInsidePort: mapping the translated port (2021) is
// enough too (classification falls back to the port after translation).
func TestFTPMappingOnInsidePort(t *testing.T) {
	r := newFTPRig(t, []portmap.Mapping{{App: portmap.AppFTP, Port: 2021}})
	c := serverInside(t, r)
	c.say(t, true, "PASV\r\n")
	if got := c.say(t, false, "227 Entering Passive Mode (10,77,0,226,195,80).\r\n"); !strings.Contains(got, "198,18,0,204") {
		t.Fatalf("reply not rewritten: %q", got)
	}
}

// TestFTPRefusedAnswered: a PORT naming a third host is answered by the
// ALG through the worker — the frame turned around leaves by the port it
// came in on, addressed to the client's next hop, from the router's own
// MAC — and never reaches the server; with another command in the same
// segment, that one goes on and the answer comes back as a second frame.
func TestFTPRefusedAnswered(t *testing.T) {
	r := newFTPRig(t, nil) // ftp on 21
	c := &ctlConn{r: r, cport: r.in, sport: r.out,
		client: tcpPeer{addr: inClient + ":40000", peer: remote1 + ":21", seq: 1000},
		server: tcpPeer{seq: 5000, addr: remote1 + ":21"}}
	c.handshake(t)
	c.say(t, false, "220 outside server\r\n")
	answer := "500 Illegal PORT command: refused by the NAT (RFC 2577).\r\n"

	d := r.exchange(r.in, r.in, TCP(t, c.client.addr, c.client.peer, ACK|PSH, c.client.seq, c.client.ack, []byte("PORT 192,0,2,1,4,1\r\n")))
	if string(d.TCP.Payload) != answer || d.Src() != remote1+":21" || d.Dst() != inClient+":40000" {
		t.Fatalf("answer %s -> %s %q", d.Src(), d.Dst(), d.TCP.Payload)
	}
	if d.Eth.SrcMAC.String() != net.HardwareAddr(macIn[:]).String() || d.Eth.DstMAC.String() != net.HardwareAddr(macHost[:]).String() {
		t.Errorf("answer from %v to %v", d.Eth.SrcMAC, d.Eth.DstMAC)
	}
	if d.TCP.Seq != c.client.ack || d.TCP.Ack != c.client.seq+20 {
		t.Errorf("answer seq %d ack %d, want %d %d", d.TCP.Seq, d.TCP.Ack, c.client.ack, c.client.seq+20)
	}
	if got := r.out.Sent(); len(got) != 0 {
		t.Fatalf("%d frames reached the server", len(got))
	}
	c.client.seq += 20
	c.client.ack += uint32(len(answer))

	// Pipelined: NOOP and a refused PORT in one segment.
	r.in.Inject(TCP(t, c.client.addr, c.client.peer, ACK|PSH, c.client.seq, c.client.ack, []byte("NOOP\r\nPORT 192,0,2,1,4,2\r\n")))
	var toServer, toClient [][]byte
	for deadline := time.Now().Add(5 * time.Second); (len(toServer) == 0 || len(toClient) == 0) && time.Now().Before(deadline); {
		r.w.Poll()
		toServer = append(toServer, r.out.Sent()...)
		toClient = append(toClient, r.in.Sent()...)
	}
	if len(toServer) != 1 || len(toClient) != 1 {
		t.Fatalf("%d frames to the server, %d to the client; drops %s", len(toServer), len(toClient), r.drops())
	}
	if s := Decode(t, toServer[0]); string(s.TCP.Payload) != "NOOP\r\n" {
		t.Errorf("server got %q", s.TCP.Payload)
	}
	// The server has not acknowledged the NOOP yet: the answer does not
	// either (it acknowledges the first PORT, which the ALG answered).
	if a := Decode(t, toClient[0]); string(a.TCP.Payload) != answer || a.TCP.Ack != c.client.seq {
		t.Errorf("client got %q ack %d, want ack %d", a.TCP.Payload, a.TCP.Ack, c.client.seq)
	}
	if free := r.pool.Free(); free == 0 {
		t.Error("frames leaked")
	}
}
