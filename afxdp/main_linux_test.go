package afxdp

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestMain fails the run if the tests leave file descriptors open: every
// socket, map, program, link and netlink handle must be closed by the
// Close that owns it.
func TestMain(m *testing.M) {
	before := openFDs()
	code := m.Run()
	if code == 0 {
		var leaked []string
		for range 50 { // closes in other goroutines may still be landing
			leaked = leaked[:0]
			for fd, target := range openFDs() {
				if _, ok := before[fd]; !ok && target != "anon_inode:[eventpoll]" && target != "anon_inode:[eventfd]" {
					leaked = append(leaked, fmt.Sprintf("%s → %s", fd, target))
				}
			}
			if len(leaked) == 0 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if len(leaked) > 0 {
			slices.Sort(leaked)
			fmt.Fprintf(os.Stderr, "file descriptors leaked by the tests:\n  %s\n", fmt.Sprint(leaked))
			code = 1
		}
	}
	os.Exit(code)
}

func openFDs() map[string]string {
	fds := map[string]string{}
	entries, _ := os.ReadDir("/proc/self/fd")
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil {
			fds[e.Name()] = target
		}
	}
	return fds
}
