package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fastnat/fastnat/internal/testnet"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times (100 on every
// Linux architecture fastnat runs on).
const clockTicks = 100

// cpuTicks is a process's user plus system time from /proc/PID/stat.
func cpuTicks(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14, stime 15.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.ParseUint(f[11], 10, 64)
	s, _ := strconv.ParseUint(f[12], 10, 64)
	return u + s
}

// TestIdleCPU measures what an idle fastnat costs: the whole process's
// CPU time over FASTNAT_IDLE_SECONDS (default 10) with no traffic, for one
// and two workers, in the default adaptive polling with the FTP ALG on.
// A measurement, not a check (it only fails if it cannot measure):
//
//	FASTNAT_IDLE=1 go test ./e2e -run TestIdleCPU -v
func TestIdleCPU(t *testing.T) {
	if os.Getenv("FASTNAT_IDLE") == "" {
		t.Skip("set FASTNAT_IDLE=1 to measure fastnat's idle CPU")
	}
	requireFastnat(t)
	secs := 10
	if s, err := strconv.Atoi(os.Getenv("FASTNAT_IDLE_SECONDS")); err == nil && s > 0 {
		secs = s
	}
	for _, queues := range []int{1, 2} {
		t.Run(fmt.Sprintf("workers=%d", queues), func(t *testing.T) {
			topo := testnet.MustNew(t, testnet.Options{Queues: queues})
			dir := t.TempDir()
			cfg := filepath.Join(dir, "fastnat.toml")
			writeFile(t, cfg, fastnatConfig(true, nil, filepath.Join(dir, "fastnat.sock")))
			p := startFastnat(t, topo, cfg)
			time.Sleep(2 * time.Second) // past start-up
			a := cpuTicks(t, p.Pid())
			time.Sleep(time.Duration(secs) * time.Second)
			b := cpuTicks(t, p.Pid())
			pct := 100 * float64(b-a) / float64(clockTicks*secs)
			t.Logf("idle fastnat, %d workers, adaptive polling, FTP ALG on: %.2f %% of a core over %d s (%.2f %% per worker)",
				queues, pct, secs, pct/float64(queues))
		})
	}
}
