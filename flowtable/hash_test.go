package flowtable

import (
	"math/big"
	"math/bits"
	"math/rand/v2"
	"testing"

	"github.com/fastnat/fastnat/packet"
)

// hash2Slow is hash2 computed with math/big: the oracle of the
// multiply-mix's arithmetic.
func hash2Slow(seed, a, b uint64) uint64 {
	word := func(x uint64) *big.Int { return new(big.Int).SetUint64(x) }
	mask := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 64), big.NewInt(1))
	mum := func(x, y uint64) (hi, lo uint64) {
		p := new(big.Int).Mul(word(x), word(y))
		return new(big.Int).Rsh(p, 64).Uint64(), new(big.Int).And(p, mask).Uint64()
	}
	seedHi := seed<<32 | seed>>32
	hi, lo := mum(a^seed, b^seedHi^mixK0)
	hi, lo = mum(lo^mixK1, hi^mixK2)
	return hi ^ lo
}

func TestHash2Oracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 10000 {
		seed, a, b := rng.Uint64(), rng.Uint64(), rng.Uint64()
		if i == 0 {
			seed, a, b = 0, 0, 0
		}
		if got, want := hash2(seed, a, b), hash2Slow(seed, a, b); got != want {
			t.Fatalf("hash2(%#x, %#x, %#x) = %#x, oracle %#x", seed, a, b, got, want)
		}
	}
}

// TestHash2Avalanche checks that flipping any one input bit flips every
// output bit with probability near one half, over random seeds and
// keys: what keeps keys that differ in a port or the low bits of an
// address from sharing buckets or tags.
func TestHash2Avalanche(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const trials = 2000
	var flips [128][64]int
	for range trials {
		seed, a, b := rng.Uint64(), rng.Uint64(), rng.Uint64()
		h := hash2(seed, a, b)
		for in := range 128 {
			a2, b2 := a, b
			if in < 64 {
				a2 ^= 1 << in
			} else {
				b2 ^= 1 << (in - 64)
			}
			d := h ^ hash2(seed, a2, b2)
			for out := range 64 {
				flips[in][out] += int(d >> out & 1)
			}
		}
	}
	for in := range flips {
		for out, f := range flips[in] {
			// 2000 fair coins: mean 1000, sd 22; allow 6 sd.
			if f < 868 || f > 1132 {
				t.Errorf("input bit %d flips output bit %d in %d of %d trials", in, out, f, trials)
			}
		}
	}
}

// TestHash2Spread hashes keys that differ only where flows differ (a
// counter in the source port and address, as in the benchmarks) and
// checks that their home buckets and tags are spread as evenly as
// random: a chi-square statistic over buckets and over tags.
func TestHash2Spread(t *testing.T) {
	const buckets, keys = 4096, 4096 * 16
	var cnt [buckets]int
	var tags [256]int
	seed := uint64(0x0123456789abcdef)
	for j := range uint64(keys) {
		w0 := (0x0a000000|j>>14&0xffffff)<<32 | 0xc6120001
		w1 := (1024+j&0x3fff)<<48 | 80<<32 | 6
		h := hash2(seed, w0, w1)
		hi, _ := bits.Mul64(h, buckets)
		cnt[hi]++
		tags[h&0xff]++
	}
	chi := func(c []int, expect float64) float64 {
		var x float64
		for _, v := range c {
			x += (float64(v) - expect) * (float64(v) - expect) / expect
		}
		return x
	}
	// For k cells the statistic has mean k-1 and sd sqrt(2(k-1)).
	if x := chi(cnt[:], keys/buckets); x > buckets+6*90.5 {
		t.Errorf("buckets: chi-square %.0f over %d cells", x, buckets)
	}
	if x := chi(tags[:], keys/256); x > 256+6*22.6 {
		t.Errorf("tags: chi-square %.0f over 256 cells", x)
	}
}

var sink uint64

// BenchmarkHash is hash2 over distinct keys (the batched lookup pays it
// once a key).
func BenchmarkHash(b *testing.B) {
	seed := uint64(0x9e3779b97f4a7c15)
	var h uint64
	for i := range uint64(b.N) {
		h += hash2(seed, i, i<<32)
	}
	sink = h
}

// TestWords checks words against packet.Tuple.Words, which Insert
// hashes and the hot line stores.
func TestWords(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 1000 {
		k := packet.Tuple{SrcAddr: rng.Uint32(), DstAddr: rng.Uint32(), SrcPort: uint16(rng.Uint32()),
			DstPort: uint16(rng.Uint32()), Proto: uint8(rng.Uint32())}
		a, b := words(&k)
		if wa, wb := k.Words(); a != wa || b != wb {
			t.Fatalf("words(%+v) = %#x %#x, Words %#x %#x", k, a, b, wa, wb)
		}
	}
}

// TestHashChunk holds LookupBatch's hashing loop, which computes hash2
// and the home bucket with the table's parameters hoisted, to Hash and
// bucketOf, for tables of one shard (shardShift 64) to many.
func TestHashChunk(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, cfg := range []Config{{MaxSessions: 100, Shards: 1}, {MaxSessions: 5000, Shards: 4}, {MaxSessions: 1 << 16}} {
		tb := mustNew(t, cfg)
		var ks [batchChunk]packet.Tuple
		for i := range ks {
			ks[i] = packet.Tuple{SrcAddr: r.Uint32(), DstAddr: r.Uint32(), SrcPort: uint16(r.Uint32()), DstPort: uint16(r.Uint32()), Proto: uint8(r.Uint32())}
		}
		var hs [batchChunk]uint64
		var bs [batchChunk]uint32
		hashChunk(ks[:], hs[:], bs[:], tb.seed, seed2(tb.seed), tb.shardShift-1, tb.nbPer)
		for i, k := range ks {
			h := tb.Hash(k)
			if hs[i] != h || bs[i] != tb.bucketOf(h) {
				t.Fatalf("%+v key %d: hashChunk %#x bucket %d; Hash %#x bucket %d", cfg, i, hs[i], bs[i], h, tb.bucketOf(h))
			}
			// The bucket lies in h's shard (shardOf shifts by shardShift
			// itself, not by homeIn's two shifts).
			if base := tb.shardOf(h) * tb.nbPer; bs[i] < base || bs[i] >= base+tb.nbPer {
				t.Fatalf("%+v key %d: bucket %d outside shard %d", cfg, i, bs[i], tb.shardOf(h))
			}
		}
	}
}
