package flowtable

import (
	"encoding/binary"
	"testing"
)

// FuzzOps drives the table and the map oracle with an operation sequence
// decoded from the input (6 bytes an operation), on a table small and
// dense enough that probes wrap, and checks every key and the index
// invariants at the end.
func FuzzOps(f *testing.F) {
	f.Add([]byte{0, 1, 0, 2, 0, 3})
	f.Add([]byte{0, 1, 0, 1, 0, 5, 7, 0, 0, 0, 0, 0, 15, 3, 0, 0, 0, 0})
	seed := make([]byte, 600)
	for i := range seed {
		seed[i] = byte(i * 37)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newOpsRun(t, 20, 2, 3, 30)
		for len(data) >= 6 {
			op := uint32(data[0])
			a := uint32(binary.LittleEndian.Uint16(data[1:3]))
			b := uint32(binary.LittleEndian.Uint16(data[3:5])) | uint32(data[5])<<16
			r.step(op, a, b)
			data = data[6:]
		}
		r.verify()
	})
}
