package flowtable

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// TestHash2IsXXH64 checks hash2 against the xxhash library's seeded
// digest over the same 16 bytes.
func TestHash2IsXXH64(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var buf [16]byte
	for i := range 10000 {
		seed, a, b := rng.Uint64(), rng.Uint64(), rng.Uint64()
		if i == 0 {
			seed, a, b = 0, 0, 0
		}
		binary.LittleEndian.PutUint64(buf[:8], a)
		binary.LittleEndian.PutUint64(buf[8:], b)
		d := xxhash.NewWithSeed(seed)
		d.Write(buf[:])
		if got, want := hash2(seed, a, b), d.Sum64(); got != want {
			t.Fatalf("hash2(%#x, %#x, %#x) = %#x, xxhash %#x", seed, a, b, got, want)
		}
		if seed == 0 && hash2(0, a, b) != xxhash.Sum64(buf[:]) {
			t.Fatal("hash2 with seed 0 differs from xxhash.Sum64")
		}
	}
}

var sink uint64

// BenchmarkHash compares hash2 with the library's ways of hashing a
// 16-byte key: the unseeded one-shot Sum64 (seed folded into the key by
// xor, as a caller would have to) and the seeded streaming Digest.
func BenchmarkHash(b *testing.B) {
	seed := uint64(0x9e3779b97f4a7c15)
	b.Run("impl=hash2", func(b *testing.B) {
		var h uint64
		for i := range uint64(b.N) {
			h += hash2(seed, i, i<<32)
		}
		sink = h
	})
	b.Run("impl=xxhash.Sum64", func(b *testing.B) {
		var h uint64
		var buf [16]byte
		for i := range uint64(b.N) {
			binary.LittleEndian.PutUint64(buf[:8], i^seed)
			binary.LittleEndian.PutUint64(buf[8:], i<<32^seed)
			h += xxhash.Sum64(buf[:])
		}
		sink = h
	})
	b.Run("impl=xxhash.Digest", func(b *testing.B) {
		var h uint64
		var buf [16]byte
		d := xxhash.NewWithSeed(seed)
		for i := range uint64(b.N) {
			binary.LittleEndian.PutUint64(buf[:8], i)
			binary.LittleEndian.PutUint64(buf[8:], i<<32)
			d.ResetWithSeed(seed)
			d.Write(buf[:])
			h += d.Sum64()
		}
		sink = h
	})
}
