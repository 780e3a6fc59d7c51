package dataplane

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/fastnat/fastnat/internal/testutil"
)

// readPcap is an independent reader of the classic pcap format: it
// returns the link type, snaplen and each record's data and original
// length.
func readPcap(t *testing.T, b []byte) (link, snaplen uint32, frames [][]byte, orig []int) {
	t.Helper()
	if len(b) < 24 {
		t.Fatalf("pcap of %d bytes", len(b))
	}
	var bo binary.ByteOrder = binary.LittleEndian
	switch binary.LittleEndian.Uint32(b) {
	case 0xa1b2c3d4:
	case 0xd4c3b2a1:
		bo = binary.BigEndian
	default:
		t.Fatalf("magic %x", b[:4])
	}
	if bo.Uint16(b[4:]) != 2 || bo.Uint16(b[6:]) != 4 {
		t.Fatalf("version %d.%d", bo.Uint16(b[4:]), bo.Uint16(b[6:]))
	}
	snaplen, link = bo.Uint32(b[16:]), bo.Uint32(b[20:])
	for p := b[24:]; len(p) > 0; {
		if len(p) < 16 {
			t.Fatalf("truncated record header")
		}
		incl, o := int(bo.Uint32(p[8:])), int(bo.Uint32(p[12:]))
		if us := bo.Uint32(p[4:]); us >= 1e6 {
			t.Fatalf("microseconds %d", us)
		}
		if len(p) < 16+incl {
			t.Fatalf("record of %d bytes, %d left", incl, len(p)-16)
		}
		frames = append(frames, p[16:16+incl])
		orig = append(orig, o)
		p = p[16+incl:]
	}
	return link, snaplen, frames, orig
}

func TestDropCaptureFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "drops.pcap")
	c, err := openDropCapture(path, 1000, 128)
	if err != nil {
		t.Fatal(err)
	}
	small := testutil.UDP(t, "198.18.0.1:5000", "198.18.0.204:7777", []byte("dropped"))
	big := testutil.UDP(t, "198.18.0.1:5001", "198.18.0.204:7777", bytes.Repeat([]byte("x"), 400))
	c.tap(small, "nat_unsolicited")
	c.tap(big, "nat_unsolicited")
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	st := c.stats()
	if st.Written != 2 || st.RateLimited != 0 || st.QueueFull != 0 || st.Errors != 0 {
		t.Fatalf("stats %+v", st)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600: dropped frames may carry private traffic", fi.Mode().Perm())
	}
	link, snaplen, frames, orig := readPcap(t, b)
	if link != 1 || snaplen != 128 || len(frames) != 2 {
		t.Fatalf("link %d snaplen %d, %d frames", link, snaplen, len(frames))
	}
	if !bytes.Equal(frames[0], small) || orig[0] != len(small) {
		t.Errorf("first frame differs from the one dropped")
	}
	if !bytes.Equal(frames[1], big[:128]) || orig[1] != len(big) {
		t.Errorf("second frame: %d bytes of %d, want the first 128 of %d", len(frames[1]), orig[1], len(big))
	}
	// gopacket decodes what the file holds.
	p := gopacket.NewPacket(frames[0], layers.LayerTypeEthernet, gopacket.Default)
	udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if udp == nil || udp.DstPort != 7777 || string(udp.Payload) != "dropped" {
		t.Errorf("decoded %v", p)
	}
	// So does tcpdump, when it is installed (.ci/run installs it).
	if tcpdump, err := exec.LookPath("tcpdump"); err == nil {
		out, err := exec.Command(tcpdump, "-nn", "-r", path).CombinedOutput()
		if err != nil {
			t.Fatalf("tcpdump: %v\n%s", err, out)
		}
		if n := strings.Count(string(out), "198.18.0.1.500"); n != 2 {
			t.Errorf("tcpdump shows %d frames:\n%s", n, out)
		}
	}
}

func TestDropCaptureRateLimit(t *testing.T) {
	c, err := newDropCapture(&bytes.Buffer{}, 100, 64) // burst 10, then one per 10 ms
	if err != nil {
		t.Fatal(err)
	}
	ms := int64(time.Millisecond)
	tests := []struct {
		name string
		at   int64 // ns since epoch
		n    int   // frames offered at once
		want int   // of them allowed
	}{
		{"burst", 0, 15, 10},
		{"still empty 5ms later", 5 * ms, 1, 0},
		{"one token later", 100 * ms, 1, 1},
		{"refills to the burst, no more", 10_000 * ms, 20, 10},
	}
	for _, tc := range tests {
		got := 0
		for range tc.n {
			if c.allow(tc.at) {
				got++
			}
		}
		if got != tc.want {
			t.Errorf("%s: %d allowed, want %d", tc.name, got, tc.want)
		}
	}
}

// TestDropCaptureNeverBlocks: with the writer stuck, taps beyond the
// buffers are counted as queue_full and return at once.
func TestDropCaptureNeverBlocks(t *testing.T) {
	c, err := newDropCapture(&bytes.Buffer{}, 1_000_000, 64) // no writer started
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 60)
	for range captureBuffers + 5 {
		c.tap(frame, "tx_full")
	}
	if st := c.stats(); st.QueueFull != 5 || st.RateLimited != 0 {
		t.Fatalf("stats %+v, want 5 queue_full", st)
	}
}

func TestDropCaptureTapAllocatesNothing(t *testing.T) {
	c, err := newDropCapture(&bytes.Buffer{}, 1_000_000_000, 64)
	if err != nil {
		t.Fatal(err)
	}
	go c.routineWrite()
	defer c.close()
	frame := make([]byte, 60)
	if a := testing.AllocsPerRun(1000, func() { c.tap(frame, "tx_full") }); a != 0 {
		t.Fatalf("%.1f allocations per tapped frame", a)
	}
}

// BenchmarkDropCaptureTap is a worker's cost per dropped frame with the
// capture on: over the rate (the common case in a drop storm) and taken.
func BenchmarkDropCaptureTap(b *testing.B) {
	frame := make([]byte, 1500)
	for _, bc := range []struct {
		name string
		rate int
	}{{"rate-limited", 1}, {"captured", 1_000_000_000}} {
		b.Run(bc.name, func(b *testing.B) {
			c, err := newDropCapture(io.Discard, bc.rate, 2048)
			if err != nil {
				b.Fatal(err)
			}
			go c.routineWrite()
			defer c.close()
			b.ReportAllocs()
			for b.Loop() {
				c.tap(frame, "tx_full")
			}
		})
	}
}
