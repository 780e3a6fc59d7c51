package alg

import (
	"encoding/binary"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/packet"
)

// BenchmarkProcess measures the ALG's throughput on one core in control
// packets per second, per kind of packet; "parse-only" is the baseline of
// what any look at a frame costs (copy in, packet.Parse).
//
//	go test ./alg -run '^$' -bench Process -benchmem
func BenchmarkProcess(b *testing.B) {
	streams := steadyStreams(b)
	for _, name := range []string{"plain", "rewrite-retransmitted", "split-retransmitted"} {
		b.Run(name, func(b *testing.B) {
			s := streams[name]()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s.step()
			}
			reportPkts(b)
		})
	}
	b.Run("new-rewrite+ack", func(b *testing.B) {
		// Two packets per op: a new 227 (parsed, expectation, rewrite,
		// record) and the client's acknowledgement (mapped, record pruned).
		h := newHarness(b, serverInside(b), Config{})
		h.handshake(isnC, isnS)
		in := []byte("227 Entering Passive Mode (10,0,0,5,195,80).\r\n")
		grow := uint32(len("198,18,0,204,") - len("10,0,0,5,"))
		data := h.frame(flowtable.Reply, testutil.ACK, isnS+1, isnC+1, in)
		ack := h.frame(flowtable.Orig, testutil.ACK, isnC+1, isnS+1, nil)
		buf := make([]byte, frameSize)
		h.nat.calls = h.nat.calls[:0:0]
		b.ReportAllocs()
		b.ResetTimer()
		for i := uint32(0); i < uint32(b.N); i++ {
			f := buf[:len(data)]
			copy(f, data)
			binary.BigEndian.PutUint32(f[14+20+4:], isnS+1+i*uint32(len(in)))
			it := Item{Buf: f, Session: h.id, Gen: 1, Dir: flowtable.Reply}
			h.ftp.Process(&it, 1)
			f = buf[:len(ack)]
			copy(f, ack)
			binary.BigEndian.PutUint32(f[14+20+8:], isnS+1+(i+1)*(uint32(len(in))+grow))
			it = Item{Buf: f, Session: h.id, Gen: 1, Dir: flowtable.Orig}
			h.ftp.Process(&it, 1)
		}
		b.StopTimer()
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/pkt")
		b.ReportMetric(float64(2*b.N)/b.Elapsed().Seconds()/1e6, "Mpps")
	})
	b.Run("parse-only", func(b *testing.B) {
		h := newHarness(b, serverInside(b), Config{})
		fr := h.frame(flowtable.Reply, testutil.ACK, isnS+1, isnC+1, []byte("200 ok\r\n"))
		buf := make([]byte, frameSize)
		var p packet.Parsed
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			f := buf[:len(fr)]
			copy(f, fr)
			packet.Parse(f, &p)
		}
		reportPkts(b)
	})
}

func reportPkts(b *testing.B) {
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/pkt")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpps")
}

// BenchmarkDivert measures what diverting a control packet to the ALG
// goroutine costs a worker: "latency" is the round trip of one packet
// (push, Wake, the Runner processes it, pop from the return ring) with
// nothing else in flight; "batch32" the per-packet cost when the worker
// pushes bursts of 32 and collects them. p50/p99 are of the whole push to
// pop time of an op (one packet, or a burst of 32).
//
//	go test ./alg -run '^$' -bench Divert
func BenchmarkDivert(b *testing.B) {
	for _, batch := range []int{1, 32} {
		name := "latency"
		if batch > 1 {
			name = "batch32"
		}
		b.Run(name, func(b *testing.B) {
			s := steadyStreams(b)["plain"]()
			in, out := mustRing(b, 256), mustRing(b, 256)
			run, err := NewRunner(s.h.ftp, []*Ring{in}, []*Ring{out}, 64, func() flowtable.Time { return 1 })
			if err != nil {
				b.Fatal(err)
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); run.Run(stop) }()
			items := make([]Item, batch)
			bufs := make([][]byte, batch)
			for i := range bufs {
				bufs[i] = make([]byte, frameSize)
			}
			back := make([]Item, batch)
			lat := make([]time.Duration, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for k := range items {
					t := s.templates[(i*batch+k)%len(s.templates)]
					f := bufs[k][:len(t)]
					copy(f, t)
					items[k] = Item{Buf: f, Session: s.h.id, Gen: 1, Dir: flowtable.Reply}
				}
				start := time.Now()
				for pushed := 0; pushed < batch; {
					pushed += in.Push(items[pushed:])
				}
				run.Wake()
				for got := 0; got < batch; {
					if k := out.Pop(back[got:]); k > 0 {
						got += k
					} else {
						runtime.Gosched() // a worker would poll its queues meanwhile
					}
				}
				lat[i] = time.Since(start)
			}
			b.StopTimer()
			close(stop)
			wg.Wait()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/pkt")
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns/op")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns/op")
		})
	}
}
