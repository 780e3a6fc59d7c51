package nat

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fastnat/fastnat/natlog"
)

const blockT0 = 1764753506295 // Unix ms

// newTestBlocks is a pool of 2 addresses, ports 1024-1535 in blocks of
// 32 (16 blocks an address); the tests allow 2 blocks per host
// (testLimit) and name rule 3.
func newTestBlocks(t testing.TB) (*blockPool, []uint32) {
	t.Helper()
	addrs := []uint32{addr4(ipa("198.18.0.204")), addr4(ipa("198.18.0.205"))}
	b, err := newBlockPool(addrs, 1024, 1535, 32, &pools{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b, addrs
}

const (
	testLimit = 2
	testRule  = 3
)

func noneReserved(uint32, uint16) bool { return false }

func newLog(t testing.TB) *eventLog {
	r, err := natlog.NewRing(1 << 16)
	if err != nil {
		t.Fatal(err)
	}
	return &eventLog{ring: r}
}

func drainEvents(l *eventLog) []natlog.Event {
	var out []natlog.Event
	buf := make([]natlog.Event, 256)
	for {
		n := l.ring.Pop(buf)
		if n == 0 {
			return out
		}
		out = append(out, buf[:n]...)
	}
}

// holds reports whether host holds the block of port on addr.
func (b *blockPool) holds(host, addr uint32, port uint16) bool {
	i, ok := b.indexOf(port)
	if !ok {
		return false
	}
	s := &b.hosts[b.shard(host)]
	s.mu.Lock()
	defer s.mu.Unlock()
	hb := s.m[host]
	if hb == nil || hb.addr != addr {
		return false
	}
	for _, blk := range hb.blocks {
		if blk.index == i {
			return true
		}
	}
	return false
}

type held struct {
	class int
	addr  uint32
	port  uint16
}

// TestBlocksModel runs random allocations and releases for 20 hosts over
// 32 blocks of 8 ports (at most 2 per host) against a model of who holds what, and after every step
// checks: no two hosts hold the same public address, class and port; a
// host's ports all lie in blocks it holds, all on one address; a host
// holds at most its limit of blocks; a refusal happens only when the model
// says so; and the block events tell the same story.
func TestBlocksModel(t *testing.T) {
	b, err := newBlockPool([]uint32{addr4(ipa("198.18.0.204")), addr4(ipa("198.18.0.205"))}, 1024, 1151, 8, &pools{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	log := newLog(t)
	rng := rand.New(rand.NewPCG(3, 4))
	owner := map[held]uint32{} // what is held, by whom
	hostPorts := map[uint32][]held{}
	blockOwner := map[[2]uint32]uint32{} // (addr, first port) → host, from events
	now := int64(blockT0)
	check := func(step int) {
		for _, e := range drainEvents(log) {
			k := [2]uint32{e.Outside.SrcAddr, uint32(e.First)}
			switch e.Type {
			case natlog.BlockAlloc:
				if o, taken := blockOwner[k]; taken {
					t.Fatalf("step %d: block %v:%d given to %v while %v holds it", step, Addr(k[0]), k[1], Addr(e.Inside.SrcAddr), Addr(o))
				}
				if e.Last != e.First+b.size-1 {
					t.Fatalf("step %d: block %d-%d is not %d ports", step, e.First, e.Last, b.size)
				}
				blockOwner[k] = e.Inside.SrcAddr
			case natlog.BlockRelease:
				if o := blockOwner[k]; o != e.Inside.SrcAddr {
					t.Fatalf("step %d: %v releases block %v:%d held by %v", step, Addr(e.Inside.SrcAddr), Addr(k[0]), k[1], Addr(o))
				}
				delete(blockOwner, k)
			}
		}
		perHost := map[uint32]int{}
		for _, o := range blockOwner {
			perHost[o]++
		}
		for h, n := range perHost {
			if n > testLimit {
				t.Fatalf("step %d: %v holds %d blocks, limit %d", step, Addr(h), n, testLimit)
			}
		}
		for h, ps := range hostPorts {
			for _, p := range ps {
				if p.addr != ps[0].addr {
					t.Fatalf("step %d: %v holds ports on %v and %v", step, Addr(h), Addr(ps[0].addr), Addr(p.addr))
				}
				first := b.lo + (p.port-b.lo)/b.size*b.size
				if blockOwner[[2]uint32{p.addr, uint32(first)}] != h {
					t.Fatalf("step %d: %v holds %v:%d outside its blocks", step, Addr(h), Addr(p.addr), p.port)
				}
			}
		}
		if int(b.use().Held) != len(blockOwner) {
			t.Fatalf("step %d: %d blocks held, events say %d", step, b.use().Held, len(blockOwner))
		}
	}
	for step := range 6000 {
		now += int64(rng.IntN(300))
		host := addr4(ipa("10.77.0.0")) + rng.Uint32N(20)
		if ps := hostPorts[host]; len(ps) > 0 && rng.IntN(100) < 35 {
			i := rng.IntN(len(ps))
			p := ps[i]
			hostPorts[host] = append(ps[:i], ps[i+1:]...)
			if len(hostPorts[host]) == 0 {
				delete(hostPorts, host)
			}
			delete(owner, p)
			b.release(p.class, host, p.addr, p.port, log, now)
			check(step)
			continue
		}
		class := rng.IntN(numClasses)
		sport := uint16(1024 + rng.IntN(600))
		addr, port, res := b.allocate(class, host, sport, rng.Uint32(), noneReserved, testLimit, testRule, 0, log, now)
		switch res {
		case blockOK:
			p := held{class, addr, port}
			if o, dup := owner[p]; dup {
				t.Fatalf("step %d: %v:%d/%d given to %v while %v holds it", step, Addr(addr), port, class, Addr(host), Addr(o))
			}
			owner[p] = host
			hostPorts[host] = append(hostPorts[host], p)
		case blockQuotaExceeded:
			// The host must hold its limit of blocks, none with a free
			// port of this class.
			free := 0
			for k, o := range blockOwner {
				if o != host {
					continue
				}
				for q := uint16(k[1]); q < uint16(k[1])+b.size; q++ {
					if _, taken := owner[held{class, k[0], q}]; !taken {
						free++
					}
				}
			}
			n := 0
			for _, o := range blockOwner {
				if o == host {
					n++
				}
			}
			if n != testLimit || free != 0 {
				t.Fatalf("step %d: quota exceeded for %v holding %d blocks with %d free ports", step, Addr(host), n, free)
			}
		case blockPortsExhausted, blockAddressesExhausted:
			if len(blockOwner) < 16 && res == blockAddressesExhausted {
				t.Fatalf("step %d: addresses exhausted with %d of 32 blocks held", step, len(blockOwner))
			}
		}
		check(step)
	}
	// Give everything back: every block returns, and the events balance.
	for host, ps := range hostPorts {
		for _, p := range ps {
			b.release(p.class, host, p.addr, p.port, log, now)
		}
		delete(hostPorts, host)
	}
	check(-1)
	if len(blockOwner) != 0 || b.use().Held != 0 {
		t.Fatalf("after releasing every port %d blocks are still held", len(blockOwner))
	}
	for i := range b.free {
		if b.free[i] != b.perAddr {
			t.Fatalf("address %d has %d free blocks, want %d", i, b.free[i], b.perAddr)
		}
	}
	if b.use().QuotaExceeded == 0 || b.use().Exhausted == 0 {
		t.Fatalf("the random walk never hit the quota or the pool's end: %+v", b.use())
	}
}

// TestBlocksConcurrent has four goroutines allocate and release for
// overlapping hosts at once. An atomic owner table catches two hosts
// holding one public address and port at the same time; each port must
// lie in a block its host holds while it holds the port.
func TestBlocksConcurrent(t *testing.T) {
	b, addrs := newTestBlocks(t)
	var owner [2][numClasses][1536]atomic.Uint32
	ai := map[uint32]int{addrs[0]: 0, addrs[1]: 1}
	var wg sync.WaitGroup
	var violations atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			log := newLog(t)
			var mine []struct {
				held
				host uint32
			}
			for i := 0; i < 20000; i++ {
				if len(mine) > 0 && (rng.IntN(2) == 0 || len(mine) > 40) {
					k := rng.IntN(len(mine))
					m := mine[k]
					mine = append(mine[:k], mine[k+1:]...)
					owner[ai[m.addr]][m.class][m.port].Store(0)
					b.release(m.class, m.host, m.addr, m.port, log, blockT0)
					continue
				}
				host := addr4(ipa("10.77.0.0")) + rng.Uint32N(24)
				class := rng.IntN(numClasses)
				addr, port, res := b.allocate(class, host, uint16(rng.IntN(65536)), rng.Uint32(), noneReserved, testLimit, testRule, 0, log, blockT0)
				if res != blockOK {
					continue
				}
				if !owner[ai[addr]][class][port].CompareAndSwap(0, host) {
					violations.Add(1)
					t.Errorf("%v:%d/%d given to %v while %v holds it", Addr(addr), port, class, Addr(host), Addr(owner[ai[addr]][class][port].Load()))
				}
				if !b.holds(host, addr, port) {
					violations.Add(1)
					t.Errorf("%v holds %v:%d outside its blocks", Addr(host), Addr(addr), port)
				}
				mine = append(mine, struct {
					held
					host uint32
				}{held{class, addr, port}, host})
				drainEvents(log)
			}
			for _, m := range mine {
				owner[ai[m.addr]][m.class][m.port].Store(0)
				b.release(m.class, m.host, m.addr, m.port, log, blockT0)
			}
		}()
	}
	wg.Wait()
	if violations.Load() == 0 && b.use().Held != 0 {
		t.Fatalf("%d blocks held after every port was released", b.use().Held)
	}
}

func TestBlocksEventsAndPreservation(t *testing.T) {
	b, addrs := newTestBlocks(t)
	log := newLog(t)
	host := addr4(ipa("10.77.0.5"))
	// The first session gets a block on the host's paired address.
	addr, port, res := b.allocate(classUDP, host, 5000, 0, noneReserved, testLimit, testRule, 0, log, blockT0)
	if res != blockOK || (addr != addrs[0] && addr != addrs[1]) {
		t.Fatalf("first allocation: %v:%d %v", Addr(addr), port, res)
	}
	evs := drainEvents(log)
	if len(evs) != 1 || evs[0].Type != natlog.BlockAlloc || evs[0].Inside.SrcAddr != host || evs[0].Outside.SrcAddr != addr ||
		port < evs[0].First || port > evs[0].Last || evs[0].RuleKind != natlog.RuleOutbound || evs[0].Rule != 3 {
		t.Fatalf("events %+v", evs)
	}
	// A source port inside its block is kept (RFC 4787 REQ-3 where possible).
	want := evs[0].First + 7
	if a2, p2, res := b.allocate(classTCP, host, want, 0, noneReserved, testLimit, testRule, 0, log, blockT0); res != blockOK || a2 != addr || p2 != want {
		t.Fatalf("preserving %d: got %v:%d %v", want, Addr(a2), p2, res)
	}
	if evs := drainEvents(log); len(evs) != 0 {
		t.Fatalf("a session in an existing block logged %v", evs)
	}
	// Both released: the block goes with one event that knows its start.
	b.release(classUDP, host, addr, port, log, blockT0+1000)
	b.release(classTCP, host, addr, want, log, blockT0+2000)
	evs = drainEvents(log)
	if len(evs) != 1 || evs[0].Type != natlog.BlockRelease || evs[0].Start != blockT0 || evs[0].Time != blockT0+2000 {
		t.Fatalf("release events %+v", evs)
	}
}

func TestBlocksQuotaIsThrottledAndReservedPortsSkipped(t *testing.T) {
	addrs := []uint32{addr4(ipa("198.18.0.204"))}
	b, err := newBlockPool(addrs, 1024, 1039, 8, &pools{}, nil) // two blocks of 8, one per host
	if err != nil {
		t.Fatal(err)
	}
	log := newLog(t)
	host := addr4(ipa("10.77.0.9"))
	reserved := func(a uint32, p uint16) bool { return p == 1027 || p == 1035 } // a nat server in each block
	got := map[uint16]bool{}
	for i := 0; i < 7; i++ {
		_, p, res := b.allocate(classTCP, host, 0, uint32(i), reserved, 1, testRule, 0, log, blockT0)
		if res != blockOK || got[p] || p == 1027 || p == 1035 {
			t.Fatalf("allocation %d: port %d %v (reserved or repeated)", i, p, res)
		}
		got[p] = true
	}
	drainEvents(log)
	for i := 0; i < 5; i++ {
		if _, _, res := b.allocate(classTCP, host, 0, 0, reserved, 1, testRule, 0, log, blockT0+int64(i)*100); res != blockQuotaExceeded {
			t.Fatalf("over the quota: %v", res)
		}
	}
	evs := drainEvents(log)
	if len(evs) != 1 || evs[0].Type != natlog.QuotaExceeded || evs[0].Inside.SrcAddr != host || evs[0].Limit != 8 {
		t.Fatalf("five refusals in one second logged %+v; want one quota event", evs)
	}
	if b.use().QuotaExceeded != 5 {
		t.Fatalf("quota counter %d, want 5", b.use().QuotaExceeded)
	}
	// Another host takes the second block; a third finds none.
	if _, _, res := b.allocate(classUDP, host+1, 0, 0, reserved, 1, testRule, 0, log, blockT0); res != blockOK {
		t.Fatalf("second host: %v", res)
	}
	if _, _, res := b.allocate(classUDP, host+2, 0, 0, reserved, 1, testRule, 0, log, blockT0); res != blockAddressesExhausted {
		t.Fatalf("third host: %v", res)
	}
	if evs := drainEvents(log); len(evs) != 2 || evs[1].Type != natlog.AddressesExhausted {
		t.Fatalf("events %+v", evs)
	}
}
