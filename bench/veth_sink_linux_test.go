package bench

import (
	"net/netip"
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/fastnat/fastnat/internal/testutil"
)

// TestVethSinkProgram runs the sink's XDP program on frames with
// BPF_PROG_TEST_RUN: translated UDP is counted and dropped, UDP from
// another source is dropped and counted as untranslated, and everything
// the client's kernel must see (probes, ARP, TCP, short or odd frames)
// passes uncounted.
func TestVethSinkProgram(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	s, err := newVethSink(netip.MustParseAddr("198.18.0.204"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	udp := func(src string, dport uint16, size int) []byte {
		spec := testFrameSpec(size, 1)
		spec.Src = netip.MustParseAddr(src)
		f, err := newVethFrames(spec)
		if err != nil {
			t.Fatal(err)
		}
		b := append([]byte(nil), f.template...)
		f.put(b, vethFlow{sport: 40000, dport: dport, csum: f.checksum(40000, dport)})
		return b
	}
	arp := make([]byte, 60)
	arp[12], arp[13] = 0x08, 0x06
	withOptions := udp("198.18.0.204", 20000, 64)
	withOptions[vethIPOff] = 0x46
	tcp := testutil.TCP(t, "198.18.0.204:80", "198.18.0.1:20000", 0x02, 1, 0, nil)
	for _, tc := range []struct {
		name      string
		frame     []byte
		want      uint32
		all, good uint64
		goodBytes uint64
	}{
		{name: "translated 64", frame: udp("198.18.0.204", 20000, 64), want: vethXDPDrop, all: 1, good: 1, goodBytes: 60},
		{name: "translated 1518", frame: udp("198.18.0.204", 20001, 1518), want: vethXDPDrop, all: 1, good: 1, goodBytes: 1514},
		{name: "high source byte", frame: udp("198.18.0.205", 20000, 64), want: vethXDPDrop, all: 1},
		{name: "untranslated", frame: udp("10.77.0.226", 20000, 64), want: vethXDPDrop, all: 1},
		{name: "probe", frame: udp("198.18.0.204", vethProbeDport, 64), want: vethXDPPass},
		{name: "arp", frame: arp, want: vethXDPPass},
		{name: "tcp", frame: tcp, want: vethXDPPass},
		{name: "ip options", frame: withOptions, want: vethXDPPass},
		{name: "short", frame: udp("198.18.0.204", 20000, 64)[:vethDataOff-1], want: vethXDPPass},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, err := s.read()
			if err != nil {
				t.Fatal(err)
			}
			ret, err := s.prog.Run(&ebpf.RunOptions{Data: tc.frame})
			if err != nil {
				t.Skipf("BPF_PROG_TEST_RUN: %v", err)
			}
			after, err := s.read()
			if err != nil {
				t.Fatal(err)
			}
			if ret != tc.want {
				t.Errorf("verdict %d, want %d", ret, tc.want)
			}
			got := vethSinkCounts{after.All - before.All, after.Good - before.Good, after.GoodBytes - before.GoodBytes}
			if want := (vethSinkCounts{tc.all, tc.good, tc.goodBytes}); got != want {
				t.Errorf("counted %+v, want %+v", got, want)
			}
		})
	}
}
