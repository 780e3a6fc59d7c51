package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fastnat/fastnat/internal/testnet"
)

// cpuTime is the CPU time a process's threads have used: the sum of
// /proc/PID/task/*/schedstat's first field (nanoseconds on a CPU), finer
// than /proc/PID/stat's clock ticks, which a few seconds of an idle
// process fill with only a handful. The Go runtime does not end its
// threads, so none is missed between two readings.
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no threads of process %d: %v", pid, err)
	}
	var sum time.Duration
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // a thread that just ended
		}
		ns, err := strconv.ParseInt(strings.Fields(string(b))[0], 10, 64)
		if err != nil {
			t.Fatalf("%s: %q", f, b)
		}
		sum += time.Duration(ns)
	}
	return sum
}

// maxIdlePerWorker is what an idle fastnat may cost, in percent of a core
// per worker (issue 14: adaptive polling idles at 2 % or less).
const maxIdlePerWorker = 2.0

// TestIdleCPU checks what an idle fastnat costs: the whole process's CPU
// time (every goroutine and the Go runtime's own threads, not only the
// workers) with no traffic, for one and two workers, in the default
// adaptive polling with the FTP ALG on. A shared machine's noise only
// adds, and comes in spells, so it takes the median of idleWindows windows
// of FASTNAT_IDLE_SECONDS (default 3) each and checks that against
// maxIdlePerWorker; -v logs every window:
//
//	go test ./e2e -run TestIdleCPU -v
func TestIdleCPU(t *testing.T) {
	requireFastnat(t)
	const idleWindows = 5
	secs := 3
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
			var pcts []float64
			for range idleWindows {
				a, start := cpuTime(t, p.Pid()), time.Now()
				time.Sleep(time.Duration(secs) * time.Second)
				b, took := cpuTime(t, p.Pid()), time.Since(start)
				pcts = append(pcts, 100*(b-a).Seconds()/took.Seconds()/float64(queues))
			}
			windows := fmt.Sprintf("%.2f", pcts)
			slices.Sort(pcts)
			median := pcts[len(pcts)/2]
			t.Logf("idle fastnat, %d workers, adaptive polling, FTP ALG on: median %.2f %% of a core per worker (%d windows of %d s, per worker: %s)",
				queues, median, idleWindows, secs, windows)
			if median > maxIdlePerWorker {
				t.Errorf("idle fastnat costs %.2f %% of a core per worker (median), want at most %.1f %%", median, maxIdlePerWorker)
			}
		})
	}
}
