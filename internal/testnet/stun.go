package testnet

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// STUN servers and NAT behaviour discovery clients, as network operators
// run them to classify a NAT: coturn's turnserver answers RFC 5780
// behaviour discovery (CHANGE-REQUEST, OTHER-ADDRESS, RESPONSE-PORT) on
// two addresses, and its turnutils_natdiscovery asks; the Vovida stund and
// stun client are the classic RFC 3489 pair.

// STUNServer is a STUN server listening on two addresses of one
// namespace, each on Port and Port+1: what RFC 5780 and RFC 3489 need to
// answer from another address or port than the one asked.
type STUNServer struct {
	Primary, Alternate netip.Addr
	Port               uint16
	Process            *Process
}

// Addr is the server's primary address and port, the one clients ask.
func (s *STUNServer) Addr() netip.AddrPort { return netip.AddrPortFrom(s.Primary, s.Port) }

// StartSTUNServer starts coturn's turnserver in ns as a STUN-only server
// with RFC 5780 behaviour discovery on primary and alternate, ports port
// and port+1 (UDP only, no authentication, no CLI), and waits until it
// answers a binding request.
func (t *Topology) StartSTUNServer(ctx context.Context, ns string, primary, alternate netip.Addr, port uint16) (*STUNServer, error) {
	return t.startSTUN(ctx, ns, primary, alternate, port, "turnserver",
		"-c", "/dev/null", // no /etc/turnserver.conf
		"-L", primary.String(), "-L", alternate.String(),
		"-p", strconv.Itoa(int(port)), "--alt-listening-port", strconv.Itoa(int(port)+1),
		"--stun-only", "--no-auth", "--no-cli", "--no-tcp", "--no-tls", "--no-dtls",
		"--log-file", "stdout", "--simple-log",
		"--pidfile", filepath.Join(t.Dir, "turnserver-"+primary.String()+".pid"))
}

// StartClassicSTUNServer starts the Vovida stund (RFC 3489) in ns on
// primary and alternate, ports port and port+1, and waits until it
// answers a binding request.
func (t *Topology) StartClassicSTUNServer(ctx context.Context, ns string, primary, alternate netip.Addr, port uint16) (*STUNServer, error) {
	return t.startSTUN(ctx, ns, primary, alternate, port, "stund", "-h", primary.String(), "-a", alternate.String(),
		"-p", strconv.Itoa(int(port)), "-o", strconv.Itoa(int(port)+1))
}

// startSTUN starts STUN server prog with args and waits until it answers.
func (t *Topology) startSTUN(ctx context.Context, ns string, primary, alternate netip.Addr, port uint16, prog string, args ...string) (*STUNServer, error) {
	if err := CheckTools(prog); err != nil {
		return nil, err
	}
	p, err := t.Start(ns, prog, args...)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", prog, err)
	}
	p.Name = prog + " " + primary.String()
	s := &STUNServer{Primary: primary, Alternate: alternate, Port: port, Process: p}
	if err := waitSTUN(ctx, ns, s); err != nil {
		_ = p.Stop()
		return nil, err
	}
	return s, nil
}

// waitSTUN sends binding requests from ns to the server's primary address
// until one is answered, the process exits, or ctx ends.
func waitSTUN(ctx context.Context, ns string, s *STUNServer) error {
	c, err := ListenUDP(ns, netip.AddrPortFrom(netip.IPv4Unspecified(), 0))
	if err != nil {
		return err
	}
	defer c.Close()
	req := BindingRequest()
	buf := make([]byte, 1500)
	for {
		if exited, err := s.Process.Exited(); exited {
			return fmt.Errorf("%s exited (%v): %s", s.Process.Name, err, tail(s.Process.Output(), 2048))
		}
		if _, err := c.WriteToUDPAddrPort(req, s.Addr()); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if n, _, err := c.ReadFromUDPAddrPort(buf); err == nil && n >= 20 && binary.BigEndian.Uint16(buf) == 0x0101 {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s does not answer on %v: %w: %s", s.Process.Name, s.Addr(), ctx.Err(), tail(s.Process.Output(), 2048))
		}
	}
}

// BindingRequest returns a STUN binding request without attributes (RFC
// 5389 §6: type 0x0001, length 0, the magic cookie, a random transaction
// id), which RFC 3489 servers answer too.
func BindingRequest() []byte {
	b := make([]byte, 20)
	binary.BigEndian.PutUint16(b[0:], 0x0001)
	binary.BigEndian.PutUint32(b[4:], 0x2112A442)
	_, _ = rand.Read(b[8:])
	return b
}

// Discovery is what one run of turnutils_natdiscovery reported.
type Discovery struct {
	// Mapping and Filtering are the tool's conclusions, such as "Endpoint
	// Independent" or "Address and Port Dependent"; "" when it drew none.
	Mapping, Filtering string
	// Hairpin: a request the tool sent to its own public mapping from
	// another socket came back to it (RFC 5780 §4.5).
	Hairpin bool
	// Responses are the binding responses in order: the public address
	// the server saw (XOR-MAPPED-ADDRESS) and the tool's local address.
	Responses []STUNResponse
	// Timeouts counts requests that got no answer within 3 s.
	Timeouts int
	Output   string
}

// STUNResponse is one binding response: the reflexive (public) address
// and the local address of the socket whose request it answered.
type STUNResponse struct {
	Reflexive, Local netip.AddrPort
}

// NATDiscovery runs turnutils_natdiscovery in ns against server with
// args (-m mapping, -f filtering, -H hairpinning, -t -T SECS lifetime,
// -c -L ADDR -A ADDR collision, -P padding) and parses what it printed.
func NATDiscovery(ctx context.Context, ns string, server netip.AddrPort, args ...string) (Discovery, error) {
	if err := CheckTools("turnutils_natdiscovery"); err != nil {
		return Discovery{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	argv := append(append([]string(nil), args...), "-p", strconv.Itoa(int(server.Port())), server.Addr().String())
	out, err := Run(ctx, ns, "turnutils_natdiscovery", argv...)
	d := ParseDiscovery(string(out))
	if err != nil {
		return d, fmt.Errorf("turnutils_natdiscovery %s: %w\n%s", strings.Join(argv, " "), err, tail(d.Output, 4096))
	}
	return d, nil
}

var (
	discoveryVerdict = regexp.MustCompile(`^NAT with (.+) (Mapping|Filtering)!$`)
	discoveryAddr    = regexp.MustCompile(`(UDP reflexive addr|Local addr): *:? *(\S+)$`)
)

// ParseDiscovery reads turnutils_natdiscovery's output: its conclusion
// lines ("NAT with Endpoint Independent Mapping!"), "Received a request
// (maybe a successful hairpinning)", "STUN receive timeout..", and each
// response's "UDP reflexive addr" and "Local addr" lines.
func ParseDiscovery(out string) Discovery {
	d := Discovery{Output: out}
	var refl netip.AddrPort
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		if m := discoveryVerdict.FindStringSubmatch(line); m != nil {
			if m[2] == "Mapping" {
				d.Mapping = m[1]
			} else {
				d.Filtering = m[1]
			}
			continue
		}
		switch {
		case strings.HasPrefix(line, "Received a request (maybe a successful hairpinning)"):
			d.Hairpin = true
			continue
		case strings.HasPrefix(line, "STUN receive timeout"):
			d.Timeouts++
			continue
		case strings.HasPrefix(line, "No NAT!"):
			d.Mapping = "No NAT"
			continue
		}
		m := discoveryAddr.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		a, err := netip.ParseAddrPort(m[2])
		if err != nil {
			continue
		}
		if m[1] == "UDP reflexive addr" {
			refl = a
		} else if refl.IsValid() {
			d.Responses = append(d.Responses, STUNResponse{Reflexive: refl, Local: a})
			refl = netip.AddrPort{}
		}
	}
	return d
}

// ClassicSTUN is what the RFC 3489 stun client concluded.
type ClassicSTUN struct {
	// Type is its verdict line without "Primary: ", such as "Independent
	// Mapping, Port Dependent Filter, preserves ports, will hairpin".
	Type string
	// Return is its exit value's word ("Return value is 0x000017").
	Return uint64
	// Mapped are the MAPPED-ADDRESS values of the responses, in order
	// (with -v).
	Mapped []netip.AddrPort
	Output string
}

// Hairpin reports whether the client saw its hairpin test come back.
func (c ClassicSTUN) Hairpin() bool { return strings.Contains(c.Type, "will hairpin") }

// PreservesPorts reports whether the client found its port preserved.
func (c ClassicSTUN) PreservesPorts() bool { return strings.Contains(c.Type, "preserves ports") }

// RunClassicSTUN runs the Vovida stun client in ns against server,
// verbosely, and parses its verdict.
func RunClassicSTUN(ctx context.Context, ns string, server netip.AddrPort, args ...string) (ClassicSTUN, error) {
	if err := CheckTools("stun"); err != nil {
		return ClassicSTUN{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	argv := append([]string{server.String(), "-v"}, args...)
	// The verbose lines go to standard error, the verdict to standard
	// output.
	out, err := Command(ctx, ns, "stun", argv...).CombinedOutput()
	c := ParseClassicSTUN(string(out))
	// The client's exit status is its verdict's bits, not success.
	if c.Type == "" {
		return c, fmt.Errorf("stun %s: no verdict (%v)\n%s", strings.Join(argv, " "), err, tail(c.Output, 4096))
	}
	return c, nil
}

// ParseClassicSTUN reads the stun client's output.
func ParseClassicSTUN(out string) ClassicSTUN {
	c := ClassicSTUN{Output: out}
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "Primary: "):
			c.Type = strings.TrimSpace(strings.TrimPrefix(line, "Primary: "))
		case strings.HasPrefix(line, "Return value is 0x"):
			c.Return, _ = strconv.ParseUint(strings.TrimPrefix(line, "Return value is 0x"), 16, 32)
		case strings.HasPrefix(line, "MappedAddress = "):
			if a, err := netip.ParseAddrPort(strings.TrimPrefix(line, "MappedAddress = ")); err == nil {
				c.Mapped = append(c.Mapped, a)
			}
		}
	}
	return c
}
