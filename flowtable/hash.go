package flowtable

import "math/bits"

// Odd 64-bit constants of the mix (the golden ratio's and two of
// XXH64's primes): any odd constants with mixed bits serve.
const (
	mixK0 uint64 = 0x9e3779b97f4a7c15
	mixK1 uint64 = 0xc2b2ae3d27d4eb4f
	mixK2 uint64 = 0x165667b19e3779f9
)

// hash2 hashes a flow key's two words under the table's secret seed.
// It is a multiply-mix in the manner of wyhash (and of the Go runtime's
// map hash where AES is absent): the words, each masked with a word of
// the seed, are multiplied into a 128-bit product, and its two halves,
// masked with constants, are multiplied again and folded. Two
// multiplies and a few xors: a fraction of XXH64's ten multiplies and
// their rotations, which the batched lookup pays for every key. Every
// output bit depends on every input bit through the second product's
// high half; the index uses the top bits (shard), the next ones (home
// bucket) and the low byte (tag).
//
// The seed is what keeps a hash flood off a bucket (see the package
// documentation): an attacker who can choose keys but not read the seed
// cannot find keys whose products collide, and the masks keep either
// factor from being made zero (a zero factor would send all keys with
// that word to one bucket) by anyone who does not know the seed. A CRC
// would be cheaper still but is linear: CRC(seed, x) xor CRC(seed, y)
// does not depend on the seed, so colliding keys found once collide in
// every table.
func hash2(seed, a, b uint64) uint64 {
	return mix(a^seed, b^seed2(seed))
}

// seed2 is the seed word hash2 masks a key's second word with, which
// LookupBatch computes once per burst rather than once per key.
func seed2(seed uint64) uint64 { return bits.RotateLeft64(seed, 32) ^ mixK0 }

// mix is hash2 of the two masked words.
func mix(x, y uint64) uint64 {
	hi, lo := bits.Mul64(x, y)
	hi, lo = bits.Mul64(lo^mixK1, hi^mixK2)
	return hi ^ lo
}
