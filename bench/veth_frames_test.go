package bench

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/fastnat/fastnat/internal/testutil"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// decodeUDP decodes frame with gopacket as the independent reader and
// checks its IPv4 and UDP checksums. Unlike testutil.Decode it accepts an
// undecodable application layer: gopacket reads some of the generator's
// ports as protocols (3784 as BFD) that a zero payload does not satisfy.
func decodeUDP(t *testing.T, frame []byte) *testutil.Decoded {
	t.Helper()
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	d := &testutil.Decoded{Raw: frame}
	d.Eth, _ = p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	d.IP, _ = p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	d.UDP, _ = p.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if d.Eth == nil || d.IP == nil || d.UDP == nil {
		t.Fatalf("not Ethernet/IPv4/UDP: %v", p)
	}
	testutil.CheckChecksums(t, frame)
	return d
}

func testFrameSpec(size, flows int) vethFrameSpec {
	return vethFrameSpec{
		SrcMAC: [6]byte{2, 0, 0, 0, 0, 1}, DstMAC: [6]byte{2, 0, 0, 0, 0, 2},
		Src: netip.MustParseAddr("10.77.0.226"), Dst: netip.MustParseAddr("198.18.0.1"),
		Size: size, Flows: flows, Seed: 7,
	}
}

// TestVethFramesDecode: every frame the generator can write, checked by
// gopacket (headers, lengths, IPv4 and UDP checksums), for sizes that
// include odd UDP lengths, and after a frame carried a probe (the
// generator reuses UMEM frames without rewriting the template).
func TestVethFramesDecode(t *testing.T) {
	for _, size := range []int{64, 65, 128, 511, 512, 1024, 1517, 1518} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			spec := testFrameSpec(size, 3000)
			f, err := newVethFrames(spec)
			if err != nil {
				t.Fatal(err)
			}
			if len(f.template) != size-4 {
				t.Fatalf("template of %d bytes, want %d", len(f.template), size-4)
			}
			b := append([]byte(nil), f.template...)
			seen := map[[2]uint16]bool{}
			for i, fl := range f.flows {
				if i%97 == 0 {
					// A probe first, in the same buffer.
					f.putProbe(b, uint32(i), int64(i)*1000)
					d := decodeUDP(t, b)
					if got := d.Dst(); got != "198.18.0.1:999" {
						t.Fatalf("probe to %s", got)
					}
					seq, ts, ok := parseProbe(d.UDP.Payload)
					if !ok || seq != uint32(i) || ts != int64(i)*1000 {
						t.Fatalf("probe payload: seq %d ts %d ok %v", seq, ts, ok)
					}
				}
				f.put(b, fl)
				d := decodeUDP(t, b)
				if t.Failed() {
					t.Fatalf("flow %d: %+v", i, fl)
				}
				if d.Src() != fmt.Sprintf("10.77.0.226:%d", fl.sport) || d.Dst() != fmt.Sprintf("198.18.0.1:%d", fl.dport) {
					t.Fatalf("flow %d: %s → %s", i, d.Src(), d.Dst())
				}
				if int(d.IP.Length) != size-4-14 || int(d.UDP.Length) != size-4-34 || d.IP.TTL != 64 {
					t.Fatalf("flow %d: ip length %d udp length %d ttl %d", i, d.IP.Length, d.UDP.Length, d.IP.TTL)
				}
				seen[[2]uint16{fl.sport, fl.dport}] = true
			}
			if len(seen) != 3000 {
				t.Fatalf("%d distinct flows, want 3000", len(seen))
			}
		})
	}
}

// TestFlowPorts: the flow numbering against its specification, for
// random flow counts: distinct port pairs, source ports in
// [1024, 1024+16384), destination ports from 20000 up and never the
// probe's.
func TestFlowPorts(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	counts := []int{1, 2, 16383, 16384, 16385, 65536, 100000}
	for range 20 {
		counts = append(counts, 1+r.IntN(200000))
	}
	for _, n := range counts {
		seen := make(map[uint32]bool, n)
		for i := range n {
			sp, dp := flowPorts(i, n)
			if sp < vethSportBase || sp >= vethSportBase+vethMaxSports || dp < vethDportBase || dp == vethProbeDport {
				t.Fatalf("flows=%d: flow %d has ports %d→%d", n, i, sp, dp)
			}
			k := uint32(sp)<<16 | uint32(dp)
			if seen[k] {
				t.Fatalf("flows=%d: flow %d repeats ports %d→%d", n, i, sp, dp)
			}
			seen[k] = true
		}
	}
}

// TestVethFramesPermutation: the send order is a permutation of all
// flows, fixed by the seed.
func TestVethFramesPermutation(t *testing.T) {
	a, err := newVethFrames(testFrameSpec(64, 5000))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newVethFrames(testFrameSpec(64, 5000))
	seen := map[vethFlow]bool{}
	inOrder := 0
	for i, fl := range a.flows {
		if b.flows[i] != fl {
			t.Fatalf("same seed, different order at %d", i)
		}
		seen[fl] = true
		if sp, dp := flowPorts(i, 5000); fl.sport == sp && fl.dport == dp {
			inOrder++
		}
	}
	if len(seen) != 5000 || inOrder > 100 {
		t.Fatalf("%d distinct flows, %d in numbering order", len(seen), inOrder)
	}
}

func TestNewVethFramesRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*vethFrameSpec)
	}{
		{"small frame", func(s *vethFrameSpec) { s.Size = 63 }},
		{"jumbo frame", func(s *vethFrameSpec) { s.Size = 1519 }},
		{"no flows", func(s *vethFrameSpec) { s.Flows = 0 }},
		{"too many flows", func(s *vethFrameSpec) { s.Flows = vethMaxFlows + 1 }},
		{"ipv6", func(s *vethFrameSpec) { s.Dst = netip.MustParseAddr("2001:db8::1") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testFrameSpec(64, 1)
			tc.mod(&s)
			if _, err := newVethFrames(s); !errors.Is(err, ErrVethConfig) {
				t.Fatalf("err %v, want %v", err, ErrVethConfig)
			}
		})
	}
}

// TestVethFramesPutAllocs: writing a packet allocates nothing.
func TestVethFramesPutAllocs(t *testing.T) {
	f, err := newVethFrames(testFrameSpec(64, 100))
	if err != nil {
		t.Fatal(err)
	}
	b := append([]byte(nil), f.template...)
	i := 0
	if n := testing.AllocsPerRun(1000, func() {
		f.put(b, f.flows[i%100])
		i++
	}); n != 0 {
		t.Fatalf("put: %v allocs", n)
	}
	if n := testing.AllocsPerRun(1000, func() { f.putProbe(b, 1, 2) }); n != 0 {
		t.Fatalf("putProbe: %v allocs", n)
	}
}

func TestParseProbe(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		ok   bool
		seq  uint32
		ts   int64
	}{
		{"valid", []byte{'F', 'N', 'T', 'P', 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 9}, true, 256, 9},
		{"valid, longer", []byte{'F', 'N', 'T', 'P', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0xff}, true, 1, 256},
		{"short", []byte{'F', 'N', 'T', 'P', 0, 0, 0, 1}, false, 0, 0},
		{"bad magic", []byte{'F', 'N', 'T', 'Q', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}, false, 0, 0},
		{"empty", nil, false, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seq, ts, ok := parseProbe(tc.in)
			if ok != tc.ok || seq != tc.seq || ts != tc.ts {
				t.Fatalf("got %d %d %v, want %d %d %v", seq, ts, ok, tc.seq, tc.ts, tc.ok)
			}
		})
	}
}
