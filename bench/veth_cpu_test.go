package bench

import (
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    []cpuTimes
		wantErr bool
	}{
		{
			name: "two cpus",
			in: "cpu  171573 0 28422 291063 897 0 1250 189 0 0\n" +
				"cpu0 85323 0 14148 146310 96 0 740 97 0 0\n" +
				"cpu1 86250 1 14273 144752 801 2 510 91 0 0\n" +
				"intr 1 2 3\nctxt 5\n",
			want: []cpuTimes{{85323, 0, 14148, 146310, 96, 0, 740, 97}, {86250, 1, 14273, 144752, 801, 2, 510, 91}},
		},
		{
			name: "offline cpu leaves a gap",
			in:   "cpu0 1 2 3 4 5 6 7 8 0 0\ncpu2 8 7 6 5 4 3 2 1 0 0\n",
			want: []cpuTimes{{1, 2, 3, 4, 5, 6, 7, 8}, {}, {8, 7, 6, 5, 4, 3, 2, 1}},
		},
		{name: "no cpu lines", in: "cpu 1 2 3 4 5 6 7 8\nintr 1\n", wantErr: true},
		{name: "bad number", in: "cpu0 1 2 x 4 5 6 7 8\n", wantErr: true},
		{name: "bad cpu", in: "cpuX 1 2 3 4 5 6 7 8\n", wantErr: true},
		{name: "huge cpu", in: "cpu99999 1 2 3 4 5 6 7 8\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcStat([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestReadProcStat(t *testing.T) {
	c, err := readProcStat()
	if err != nil {
		t.Skip(err)
	}
	if len(c) == 0 || c[0].busy()+c[0].Idle == 0 {
		t.Fatalf("cpus %+v", c)
	}
}

func TestCPUTimes(t *testing.T) {
	a := cpuTimes{User: 10, Nice: 1, System: 5, Idle: 100, IOWait: 3, IRQ: 2, SoftIRQ: 7, Steal: 9}
	if got := a.busy(); got != 10+1+5+2+7 {
		t.Fatalf("busy %d", got)
	}
	if got := a.sub(cpuTimes{User: 1, Idle: 50, SoftIRQ: 7}); got != (cpuTimes{9, 1, 5, 50, 3, 2, 0, 9}) {
		t.Fatalf("sub %+v", got)
	}
	if ticks(250) != 2500*time.Millisecond {
		t.Fatalf("ticks(250) = %v", ticks(250))
	}
}

func TestParsePIDStat(t *testing.T) {
	rest := " S 1 1 1 0 -1 4194560 100 0 0 0 123 45 0 0 20 0 1 0 100 1000 10"
	kthread := " S 2 0 0 0 -1 2129984 0 0 0 0 7 8 0 0 20 0 1 0 100 0 0"
	for _, tc := range []struct {
		name    string
		in      string
		want    uint64
		flags   uint64
		wantErr bool
	}{
		{name: "plain", in: "17754 (fastnat)" + rest, want: 168, flags: 4194560},
		{name: "spaces and parens in the name", in: "17754 (a) b (c) d)" + rest, want: 168, flags: 4194560},
		{name: "kernel thread", in: "15 (ksoftirqd/1)" + kthread, want: 15, flags: 2129984},
		{name: "no name", in: "17754 fastnat S 1", wantErr: true},
		{name: "short", in: "17754 (x) S 1 2 3", wantErr: true},
		{name: "bad utime", in: "1 (x) S 1 1 1 0 -1 0 0 0 0 0 u 45 0", wantErr: true},
		{name: "bad stime", in: "1 (x) S 1 1 1 0 -1 0 0 0 0 0 1 s 0", wantErr: true},
		{name: "bad flags", in: "1 (x) S 1 1 1 0 -1 f 0 0 0 0 1 2 0", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, flags, err := parsePIDStat([]byte(tc.in))
			if (err != nil) != tc.wantErr || got != tc.want || flags != tc.flags {
				t.Fatalf("got %d %#x, %v; want %d %#x, error %v", got, flags, err, tc.want, tc.flags, tc.wantErr)
			}
		})
	}
	if 2129984&pfKthread == 0 || 4194560&pfKthread != 0 {
		t.Fatal("PF_KTHREAD test data wrong")
	}
}

func TestOtherTicks(t *testing.T) {
	before := map[int]uint64{1: 10, 2: 20, 3: 30}
	after := map[int]uint64{1: 15, 3: 30, 4: 7, 5: 2}
	// 1 used 5, 2 is gone (its last ticks are lost), 3 idle, 4 and 5 new.
	if got := otherTicks(before, after); got != 5+7+2 {
		t.Fatalf("otherTicks = %d", got)
	}
	// A reused pid with a smaller count is a new process.
	if got := otherTicks(map[int]uint64{9: 100}, map[int]uint64{9: 4}); got != 4 {
		t.Fatalf("reused pid: %d", got)
	}
}

func TestKnownProcesses(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	known := knownProcesses(os.Getpid())
	if _, ok := known[os.Getpid()]; !ok {
		t.Fatal("a listed pid is missing")
	}
	if _, ok := known[2]; !ok {
		t.Fatal("kthreadd (pid 2) missing: kernel threads are known")
	}
	if _, ok := knownProcesses()[os.Getpid()]; ok {
		t.Fatal("an unlisted user process is known")
	}
}

func TestProcessCPUSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip(err)
	}
	if _, err := processCPU(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}

func TestParseCPUInfo(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		model   string
		virtual bool
	}{
		{"kvm guest", "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse hypervisor avx\n\nprocessor\t: 1\nmodel name\t: AMD EPYC\n", "AMD EPYC", true},
		{"bare metal", "model name : Intel(R) Xeon(R) Gold 6338\nflags : fpu sse avx\n", "Intel(R) Xeon(R) Gold 6338", false},
		{"no model (arm)", "processor : 0\nBogoMIPS : 50.00\n", "unknown", false},
		{"hypervisor only as a word", "flags : fpu hypervisorish\n", "unknown", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, v := parseCPUInfo([]byte(tc.in))
			if m != tc.model || v != tc.virtual {
				t.Fatalf("got %q %v, want %q %v", m, v, tc.model, tc.virtual)
			}
		})
	}
}

func TestThisMachine(t *testing.T) {
	m := ThisMachine()
	if m.Cores < 1 || m.Go == "" || !strings.Contains(m.String(), m.Go) {
		t.Fatalf("%+v: %s", m, m)
	}
}

// slowPercentile is the nearest-rank definition read literally: the
// smallest value such that at least q of the values are ≤ it.
func slowPercentile(v []time.Duration, q float64) time.Duration {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	for _, x := range s {
		n := 0
		for _, y := range s {
			if y <= x {
				n++
			}
		}
		if float64(n) >= q*float64(len(s))-1e-9 {
			return x
		}
	}
	return s[len(s)-1]
}

// TestPercentileOracle compares percentile with slowPercentile on random
// samples, duplicates included.
func TestPercentileOracle(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 500 {
		v := make([]time.Duration, r.IntN(50))
		for j := range v {
			v[j] = time.Duration(r.IntN(20))
		}
		s := slices.Clone(v)
		slices.Sort(s)
		for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 1} {
			if got, want := percentile(s, q), slowPercentile(v, q); got != want {
				t.Fatalf("case %d q=%v %v: got %v, want %v", i, q, s, got, want)
			}
		}
	}
}
