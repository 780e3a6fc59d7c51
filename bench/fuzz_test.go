package bench

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

// Fuzz targets for the veth benchmark's parsers: what it reads from /proc
// and from the probes' payloads and control messages.

func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte("cpu  1 2 3 4 5 6 7 8 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\ncpu1 8 7 6 5 4 3 2 1 0 0\nintr 5\n"))
	f.Add([]byte("cpu3 1 2 3 4 5 6 7 8\n"))
	f.Add([]byte("cpu-1 1 2 3 4 5 6 7 8\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cpus, err := parseProcStat(b)
		if err != nil {
			return
		}
		// Re-render what was parsed; parsing that gives the same values.
		var s strings.Builder
		for i, c := range cpus {
			fmt.Fprintf(&s, "cpu%d %d %d %d %d %d %d %d %d\n", i, c.User, c.Nice, c.System, c.Idle, c.IOWait, c.IRQ, c.SoftIRQ, c.Steal)
		}
		again, err := parseProcStat([]byte(s.String()))
		if err != nil || len(again) != len(cpus) {
			t.Fatalf("re-parse: %v, %d cpus, want %d", err, len(again), len(cpus))
		}
		for i := range cpus {
			if again[i] != cpus[i] {
				t.Fatalf("cpu %d: %+v, re-parsed %+v", i, cpus[i], again[i])
			}
		}
	})
}

func FuzzParsePIDStat(f *testing.F) {
	f.Add([]byte("17754 (fastnat) S 1 1 1 0 -1 4194560 100 0 0 0 123 45 0 0 20 0 1 0 100 1000 10"))
	f.Add([]byte("1 ((x) )) S 1 1 1 0 -1 0 0 0 0 0 1 2 3"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cpu, flags, err := parsePIDStat(b)
		if err != nil {
			if cpu != 0 || flags != 0 {
				t.Fatalf("error %v with values %d %d", err, cpu, flags)
			}
			return
		}
		// The fields follow the last ')'.
		if bytes.LastIndexByte(b, ')') < 0 {
			t.Fatal("parsed without a command name")
		}
	})
}

func FuzzParseProbe(f *testing.F) {
	f.Add([]byte("FNTP\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x02"))
	f.Add([]byte("FNTP"))
	f.Fuzz(func(t *testing.T, b []byte) {
		seq, ts, ok := parseProbe(b)
		if !ok {
			return
		}
		var want [vethProbeLen]byte
		binary.BigEndian.PutUint32(want[0:], vethProbeMagic)
		binary.BigEndian.PutUint32(want[4:], seq)
		binary.BigEndian.PutUint64(want[8:], uint64(ts))
		if !bytes.Equal(b[:vethProbeLen], want[:]) {
			t.Fatalf("parsed %d %d from %x", seq, ts, b)
		}
	})
}

func FuzzParseCPUInfo(f *testing.F) {
	f.Add([]byte("model name\t: AMD EPYC\nflags\t: fpu hypervisor\n"))
	f.Add([]byte(":::\nmodel name:\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		model, _ := parseCPUInfo(b)
		if model == "" {
			t.Fatal("empty model name")
		}
	})
}

func FuzzKernelStamp(f *testing.F) {
	// A SCM_TIMESTAMPNS control message as the kernel lays it out on a
	// 64-bit machine: cmsghdr{len 32, level 1, type 35}, timespec{1, 2}.
	var m [32]byte
	binary.NativeEndian.PutUint64(m[0:], 32)
	binary.NativeEndian.PutUint32(m[8:], 1)
	binary.NativeEndian.PutUint32(m[12:], 35)
	binary.NativeEndian.PutUint64(m[16:], 1)
	binary.NativeEndian.PutUint64(m[24:], 2)
	f.Add(m[:])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		kernelStamp(b) // must not panic
	})
}

func TestKernelStamp(t *testing.T) {
	var m [32]byte
	binary.NativeEndian.PutUint64(m[0:], 32)
	binary.NativeEndian.PutUint32(m[8:], 1)   // SOL_SOCKET
	binary.NativeEndian.PutUint32(m[12:], 35) // SCM_TIMESTAMPNS
	binary.NativeEndian.PutUint64(m[16:], 3)
	binary.NativeEndian.PutUint64(m[24:], 4)
	if ts, ok := kernelStamp(m[:]); !ok || ts != 3e9+4 {
		t.Fatalf("got %d %v", ts, ok)
	}
	binary.NativeEndian.PutUint32(m[12:], 29) // SCM_TIMESTAMP: another type
	if _, ok := kernelStamp(m[:]); ok {
		t.Fatal("SCM_TIMESTAMP taken for SCM_TIMESTAMPNS")
	}
	if _, ok := kernelStamp(m[:7]); ok {
		t.Fatal("truncated message parsed")
	}
}
