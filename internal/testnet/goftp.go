package testnet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// ErrFTPReply is returned by GoFTP when the server's reply is not the one
// the step needs.
var ErrFTPReply = errors.New("unexpected ftp reply")

// GoFTP is a small FTP client written for tests that need a say in the
// bytes of the control connection (how they are cut into segments is a
// SplitRelay's job): it logs in anonymously and runs data connections in
// any of the four modes over a socket in a namespace. It is not safe for
// concurrent use.
type GoFTP struct {
	ns   string
	conn net.Conn
	r    *bufio.Reader
	// Timeout bounds every reply and data connection; zero means 20 s.
	Timeout time.Duration
	// DataPort is the port PORT and EPRT listen on; zero means any. A
	// fixed one is listened on again for every data connection, as
	// clients that bind their data port do (SO_REUSEADDR).
	DataPort uint16
}

// Reply is one FTP reply (RFC 959 4.2): its code and its lines, without
// line ends; a multi-line reply has several.
type Reply struct {
	Code  int
	Lines []string
}

func (r Reply) String() string { return strings.Join(r.Lines, " | ") }

// DialFTP connects from namespace ns to the FTP server at addr and logs in
// as anonymous.
func DialFTP(ctx context.Context, ns string, addr netip.AddrPort) (*GoFTP, error) {
	return DialFTPFrom(ctx, ns, netip.AddrPort{}, addr)
}

// DialFTPFrom is DialFTP from local address laddr (see DialTCPFrom).
func DialFTPFrom(ctx context.Context, ns string, laddr, addr netip.AddrPort) (*GoFTP, error) {
	c, err := DialTCPFrom(ctx, ns, laddr, addr)
	if err != nil {
		return nil, err
	}
	f := &GoFTP{ns: ns, conn: c, r: bufio.NewReader(c)}
	if _, err := f.expect(220); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := f.Cmd("USER anonymous", 230); err != nil {
		c.Close()
		return nil, err
	}
	return f, nil
}

func (f *GoFTP) timeout() time.Duration {
	if f.Timeout > 0 {
		return f.Timeout
	}
	return 20 * time.Second
}

// ReadReply reads the next reply, multi-line ones whole.
func (f *GoFTP) ReadReply() (Reply, error) {
	f.conn.SetReadDeadline(time.Now().Add(f.timeout()))
	var r Reply
	for {
		line, err := f.r.ReadString('\n')
		if err != nil {
			return r, fmt.Errorf("read reply (so far %v): %w", r, err)
		}
		line = strings.TrimRight(line, "\r\n")
		r.Lines = append(r.Lines, line)
		if len(r.Lines) == 1 {
			if len(line) < 4 {
				return r, fmt.Errorf("%w: %q", ErrFTPReply, line)
			}
			r.Code, err = strconv.Atoi(line[:3])
			if err != nil {
				return r, fmt.Errorf("%w: %q", ErrFTPReply, line)
			}
			if line[3] != '-' {
				return r, nil
			}
			continue
		}
		if len(line) >= 4 && line[:3] == r.Lines[0][:3] && line[3] == ' ' {
			return r, nil
		}
	}
}

func (f *GoFTP) expect(code int) (Reply, error) {
	r, err := f.ReadReply()
	if err != nil {
		return r, err
	}
	if code != 0 && r.Code != code {
		return r, fmt.Errorf("%w: %v, want %d", ErrFTPReply, r, code)
	}
	return r, nil
}

// Cmd sends line (without its line end) in one write and reads the reply;
// with want not zero, another code is an error.
func (f *GoFTP) Cmd(line string, want int) (Reply, error) {
	if _, err := f.conn.Write([]byte(line + "\r\n")); err != nil {
		return Reply{}, fmt.Errorf("send %q: %w", line, err)
	}
	r, err := f.expect(want)
	if err != nil {
		return r, fmt.Errorf("%s: %w", line, err)
	}
	return r, nil
}

// Transfer is what a data connection of List did: the reply that set it
// up (227, 229, or 200 to PORT/EPRT) and the bytes that came over it.
type Transfer struct {
	Setup Reply
	Data  []byte
}

// List runs NLST over a data connection set up in mode and returns the
// listing; the data connection proves that whatever the NAT did to the
// setup reply or command works.
func (f *GoFTP) List(ctx context.Context, mode Mode) (Transfer, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout())
	defer cancel()
	var t Transfer
	var data net.Conn
	switch mode {
	case PASV, EPSV:
		cmd, code := "PASV", 227
		if mode == EPSV {
			cmd, code = "EPSV", 229
		}
		r, err := f.Cmd(cmd, code)
		t.Setup = r
		if err != nil {
			return t, err
		}
		addr, err := passiveAddr(r, f.conn.RemoteAddr().(*net.TCPAddr).AddrPort().Addr())
		if err != nil {
			return t, err
		}
		if data, err = DialTCP(ctx, f.ns, addr); err != nil {
			return t, err
		}
		defer data.Close()
		if _, err := f.Cmd("NLST", 150); err != nil {
			return t, err
		}
	case PORT, EPRT:
		local := f.conn.LocalAddr().(*net.TCPAddr).AddrPort().Addr()
		ln, err := ListenTCP(f.ns, netip.AddrPortFrom(local, f.DataPort))
		if err != nil {
			return t, err
		}
		defer ln.Close()
		p := ln.Addr().(*net.TCPAddr).AddrPort().Port()
		cmd := fmt.Sprintf("EPRT |1|%s|%d|", local, p)
		if mode == PORT {
			a := local.As4()
			cmd = fmt.Sprintf("PORT %d,%d,%d,%d,%d,%d", a[0], a[1], a[2], a[3], p>>8, p&0xff)
		}
		if t.Setup, err = f.Cmd(cmd, 200); err != nil {
			return t, err
		}
		if _, err := f.Cmd("NLST", 150); err != nil {
			return t, err
		}
		ln.SetDeadline(time.Now().Add(f.timeout()))
		if data, err = ln.Accept(); err != nil {
			return t, fmt.Errorf("accept the data connection: %w", err)
		}
		defer data.Close()
	default:
		return t, fmt.Errorf("%w: %v", ErrModeUnsupported, mode)
	}
	data.SetReadDeadline(time.Now().Add(f.timeout()))
	b, err := io.ReadAll(data)
	t.Data = b
	if err != nil {
		return t, fmt.Errorf("read the listing: %w", err)
	}
	if _, err := f.expect(226); err != nil {
		return t, err
	}
	return t, nil
}

// passiveAddr reads the data endpoint of a 227 (RFC 1123 4.1.2.6: the
// first digit after the code starts the six numbers) or 229 reply (RFC
// 2428 3: the control connection's server address, the port in
// delimiters).
func passiveAddr(r Reply, server netip.Addr) (netip.AddrPort, error) {
	line := r.Lines[0]
	if r.Code == 229 {
		i := strings.IndexByte(line, '(')
		if i < 0 || i+4 >= len(line) {
			return netip.AddrPort{}, fmt.Errorf("%w: %q", ErrFTPReply, line)
		}
		d := line[i+1]
		rest := line[i+4:]
		j := strings.IndexByte(rest, d)
		p, err := strconv.ParseUint(rest[:max(j, 0)], 10, 16)
		if j < 0 || err != nil {
			return netip.AddrPort{}, fmt.Errorf("%w: %q", ErrFTPReply, line)
		}
		return netip.AddrPortFrom(server, uint16(p)), nil
	}
	i := 4
	for i < len(line) && (line[i] < '0' || line[i] > '9') {
		i++
	}
	var n [6]int
	rest := line[i:]
	for k := range n {
		j := 0
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		v, err := strconv.Atoi(rest[:j])
		if err != nil || v > 255 {
			return netip.AddrPort{}, fmt.Errorf("%w: %q", ErrFTPReply, line)
		}
		n[k] = v
		if k < 5 {
			if j >= len(rest) || rest[j] != ',' {
				return netip.AddrPort{}, fmt.Errorf("%w: %q", ErrFTPReply, line)
			}
			rest = rest[j+1:]
		}
	}
	a := netip.AddrFrom4([4]byte{byte(n[0]), byte(n[1]), byte(n[2]), byte(n[3])})
	return netip.AddrPortFrom(a, uint16(n[4]<<8|n[5])), nil
}

// Quit sends QUIT, reads the 221 and closes the connection.
func (f *GoFTP) Quit() error {
	_, err := f.Cmd("QUIT", 221)
	if cerr := f.conn.Close(); err == nil {
		err = cerr
	}
	return err
}

// QuitLast sends QUIT, reads the 221 and closes the connection only
// after the server has closed its side (RFC 959 4.1.1: the server closes
// after its reply to QUIT), so that the client's port is left in no
// TIME-WAIT (RFC 9293 3.6: the side that closes first waits there) and
// can be bound again at once, as a client's next ephemeral port may.
func (f *GoFTP) QuitLast() error {
	if _, err := f.Cmd("QUIT", 221); err != nil {
		f.conn.Close()
		return err
	}
	_ = f.conn.SetReadDeadline(time.Now().Add(f.timeout()))
	_, err := io.Copy(io.Discard, f.r)
	if cerr := f.conn.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("waiting for the server to close after QUIT: %w", err)
	}
	return nil
}

// Close closes the connection without QUIT.
func (f *GoFTP) Close() error { return f.conn.Close() }

// LocalAddr is the control connection's own address.
func (f *GoFTP) LocalAddr() netip.AddrPort { return f.conn.LocalAddr().(*net.TCPAddr).AddrPort() }
