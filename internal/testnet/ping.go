package testnet

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"
)

// ICMP message types used by Ping (RFC 792).
const (
	icmpEchoReply   = 0
	icmpEchoRequest = 8
)

// pingPayload marks the harness's echo requests.
var pingPayload = []byte("fastnat-testnet-ping")

// PingResult is what Ping saw.
type PingResult struct {
	Sent     int
	Received int
	// ID is the echo identifier Ping used. A NAT may rewrite it on the
	// way out; the reply must come back with this one.
	ID uint16
}

// Ping sends count ICMP echo requests from namespace ns to dst, one at a
// time, and counts the matching echo replies (same identifier and sequence
// number, from dst), waiting up to wait for each. It is a small
// replacement for ping(8), which minimal systems lack. An error means
// Ping could not run; lost replies only show in the result.
func Ping(ctx context.Context, ns string, dst netip.Addr, count int, wait time.Duration) (PingResult, error) {
	c, err := ListenPacket(ns, "ip4:icmp", "0.0.0.0")
	if err != nil {
		return PingResult{}, err
	}
	defer c.Close()
	var idb [2]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return PingResult{}, fmt.Errorf("ping id: %w", err)
	}
	res := PingResult{ID: binary.BigEndian.Uint16(idb[:])}
	buf := make([]byte, 1500)
	to := &net.IPAddr{IP: dst.AsSlice()}
	for seq := 1; seq <= count; seq++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		msg := echoRequest(res.ID, uint16(seq), pingPayload)
		if _, err := c.WriteTo(msg, to); err != nil {
			return res, fmt.Errorf("ping %s from %s: %w", dst, ns, err)
		}
		res.Sent++
		deadline := time.Now().Add(wait)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		_ = c.SetReadDeadline(deadline)
		for {
			n, from, err := c.ReadFrom(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break // lost
			}
			if err != nil {
				return res, fmt.Errorf("ping %s from %s: %w", dst, ns, err)
			}
			ip, ok := from.(*net.IPAddr)
			if !ok {
				continue
			}
			src, _ := netip.AddrFromSlice(ip.IP)
			typ, id, sq, ok := parseEcho(buf[:n])
			if ok && typ == icmpEchoReply && id == res.ID && sq == uint16(seq) && src.Unmap() == dst {
				res.Received++
				break
			}
		}
	}
	return res, nil
}

// echoRequest builds an ICMP echo request message (RFC 792):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           Identifier          |        Sequence Number        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Data ...
func echoRequest(id, seq uint16, payload []byte) []byte {
	b := make([]byte, 8+len(payload))
	b[0] = icmpEchoRequest
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], seq)
	copy(b[8:], payload)
	// "The checksum is the 16-bit ones's complement of the one's
	// complement sum of the ICMP message starting with the ICMP Type."
	binary.BigEndian.PutUint16(b[2:], inetChecksum(b))
	return b
}

// parseEcho reads an ICMP echo request or reply (without IP header); ok is
// false for anything shorter than the echo header, of another type, or
// with a wrong checksum.
func parseEcho(b []byte) (typ uint8, id, seq uint16, ok bool) {
	if len(b) < 8 {
		return 0, 0, 0, false
	}
	typ = b[0]
	if (typ != icmpEchoReply && typ != icmpEchoRequest) || b[1] != 0 {
		return 0, 0, 0, false
	}
	if inetChecksum(b) != 0 {
		return 0, 0, 0, false
	}
	return typ, binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:]), true
}

// inetChecksum is the Internet checksum of b (RFC 1071). Over a message
// whose checksum field is already filled in it yields 0.
func inetChecksum(b []byte) uint16 {
	var sum uint32
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
