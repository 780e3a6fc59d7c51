package flowtable

import "math/bits"

// XXH64 primes (xxHash specification, "XXH64 algorithm").
const (
	prime1 uint64 = 11400714785074694791
	prime2 uint64 = 14029467366897019727
	prime3 uint64 = 1609587929392839161
	prime4 uint64 = 9650029242287828579
	prime5 uint64 = 2870177450012600261
)

// hash2 is XXH64 with the given seed over the 16 bytes that are a and b in
// little-endian order: the same value as
//
//	xxhash.NewWithSeed(seed).Write(le64(a) ++ le64(b)); Sum64()
//
// (the differential test checks it), computed from the two words directly.
// The library's one-shot Sum64 takes no seed and a []byte; its seeded
// Digest runs the general streaming code and is several times slower for a
// 16-byte key. A flow key is always two words, so the XXH64 steps for a
// 16-byte input reduce to two lane rounds and the avalanche, which inline.
func hash2(seed, a, b uint64) uint64 {
	h := seed + prime5 + 16
	h ^= bits.RotateLeft64(a*prime2, 31) * prime1
	h = bits.RotateLeft64(h, 27)*prime1 + prime4
	h ^= bits.RotateLeft64(b*prime2, 31) * prime1
	h = bits.RotateLeft64(h, 27)*prime1 + prime4
	h ^= h >> 33
	h *= prime2
	h ^= h >> 29
	h *= prime3
	h ^= h >> 32
	return h
}
