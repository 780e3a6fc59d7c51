package alg

import (
	"runtime"
	"testing"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/testutil"
)

// TestSYNFloodCostsNoSessionState: a control session that has carried no
// data — the half-open connections of a SYN flood to an FTP port — costs
// the ALG a few bytes, not a session's state (4 KiB of line buffers and
// records): 20,000 SYNs leave no session and well under 512 bytes each on
// the heap, and all of it goes when the sessions end. A session's first
// data still starts its streams where the SYNs said (a segment beyond a
// gap is held back for retransmission, as with state from the SYN), and
// the ALG keeps at most maxFree forgotten sessions for reuse.
func TestSYNFloodCostsNoSessionState(t *testing.T) {
	h := newHarness(t, serverInside(t), Config{})
	const n = 20000
	key := h.table.sessions[h.id]
	for id := uint32(100); id < 100+n; id++ {
		h.table.sessions[id] = key
	}
	syn := h.frame(flowtable.Orig, testutil.SYN, 1000, 0, nil)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for id := uint32(100); id < 100+n; id++ {
		fr := append(make([]byte, 0, frameSize), syn...)
		if _, v := h.processAt(fr, id, flowtable.Orig, 1); v != Forward {
			t.Fatalf("SYN: %v", v)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n; len(h.ftp.sessions) != 0 || per > 512 {
		t.Fatalf("%d SYNs: %d sessions with state, %d heap bytes each", n, len(h.ftp.sessions), per)
	}
	for id := uint32(100); id < 100+n; id++ {
		h.ftp.Forget(id, h.table.gen(id))
	}
	h.ftp.applyForget()
	if len(h.ftp.hands) != 0 {
		t.Fatalf("%d handshakes kept after their sessions ended", len(h.ftp.hands))
	}

	// The first data after the handshake: its streams start after the
	// SYNs, so a segment beyond a gap waits for the one before it.
	h.handshake(isnC, isnS)
	later := isnS + 1
	later += 30
	if _, v := h.process(flowtable.Reply, h.frame(flowtable.Reply, testutil.ACK, later, isnC+1, []byte("later\r\n"))); v != DropOutOfOrder {
		t.Fatalf("segment beyond a gap: %v, want %v", v, DropOutOfOrder)
	}
	s, v := h.process(flowtable.Reply, h.frame(flowtable.Reply, testutil.ACK, isnS+1, isnC+1, []byte("227 =10,0,0,5,195,80\r\n")))
	if v != Forward || s.payload == "227 =10,0,0,5,195,80\r\n" {
		t.Fatalf("first reply %v %q: want it rewritten", v, s.payload)
	}

	// Sessions with data, all ended: at most maxFree kept for reuse.
	for id := uint32(100); id < 300; id++ {
		fr := h.frame(flowtable.Reply, testutil.ACK, isnS+1, isnC+1, []byte("220 hello\r\n"))
		h.processAt(fr, id, flowtable.Reply, 1)
		h.ftp.Forget(id, h.table.gen(id))
	}
	h.ftp.applyForget()
	if len(h.ftp.free) > maxFree {
		t.Fatalf("%d forgotten sessions kept, at most %d", len(h.ftp.free), maxFree)
	}
}
