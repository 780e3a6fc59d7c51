package packet

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// reportPackets adds ns/pkt and Mpps for a benchmark that handles one packet
// per iteration.
func reportPackets(b *testing.B) {
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(ns, "ns/pkt")
	b.ReportMetric(1e3/ns, "Mpps")
}

func BenchmarkParse(b *testing.B) {
	udp := udpSpec(5353, 53, make([]byte, 18)) // 14+20+8+18 = 60 bytes + FCS = 64 on the wire
	tcp := tcpSpec(40000, 9091, make([]byte, 100))
	errTCP := icmpError(ICMPDestUnreachable, ICMPCodePortUnreachable, inner(b, embeddedTCP()))
	for _, bc := range []struct {
		name  string
		frame []byte
	}{
		{"udp64", udp.frame(b)},
		{"udp64_vlan", withVLAN(udp, 10).frame(b)},
		{"tcp_options", tcp.frame(b)},
		{"icmp_error_tcp", errTCP.frame(b)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var p Parsed
			if r := Parse(bc.frame, &p); r != OK {
				b.Fatalf("Parse = %v", r)
			}
			b.ReportAllocs()
			for b.Loop() {
				Parse(bc.frame, &p)
			}
			reportPackets(b)
		})
	}
}

// BenchmarkChecksum compares Sum with the word-by-word RFC 1071 oracle on
// an IPv4 header, a small packet and a full-size one.
func BenchmarkChecksum(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{20, 64, 1500} {
		buf := randomBytes(r, n)
		b.Run(fmt.Sprintf("fast/%d", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				Checksum(buf, 0)
			}
		})
		b.Run(fmt.Sprintf("naive/%d", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				naiveChecksum(buf, 0)
			}
		})
	}
}

// BenchmarkRewrite compares the two ways of translating a TCP packet's
// source address and port: checksum-updating setters, and raw stores plus
// a Delta precomputed for the session (what nat does).
func BenchmarkRewrite(b *testing.B) {
	frame := tcpSpec(40000, 9091, make([]byte, 100)).frame(b)
	p := mustParse(b, frame)
	const newAddr, newPort = 0xc61200cc, 1024
	b.Run("setters", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p.IPv4(frame).SetSrcAddr(newAddr)
			tcp := p.TCP(frame)
			tcp.SetChecksum(UpdateChecksum32(tcp.Checksum(), 0xc6120001, newAddr))
			tcp.SetSrcPort(newPort)
		}
		reportPackets(b)
	})
	ipDelta := Delta(0).Add32(0xc6120001, newAddr)
	l4Delta := ipDelta.Add16(40000, newPort)
	b.Run("delta", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ip := p.IPv4(frame)
			ip.SetSrcAddrRaw(newAddr)
			ip.SetChecksum(ApplyDelta(ip.Checksum(), ipDelta))
			tcp := p.TCP(frame)
			tcp.SetSrcPortRaw(newPort)
			tcp.SetChecksum(ApplyDelta(tcp.Checksum(), l4Delta))
		}
		reportPackets(b)
	})
	b.Run("full_recompute", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ip := p.IPv4(frame)
			ip.SetSrcAddrRaw(newAddr)
			ip.SetChecksum(ip.CalculateChecksum())
			tcp := p.TCP(frame)
			tcp.SetSrcPortRaw(newPort)
			tcp.SetChecksum(TCPChecksum(ip, tcp))
		}
		reportPackets(b)
	})
}
