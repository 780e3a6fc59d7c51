package sdnotify

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// listen opens a datagram socket like systemd's notify socket.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func receive(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 4096)
	n, err := c.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[:n])
}

func TestNotify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	c := listen(t, path)
	t.Setenv("NOTIFY_SOCKET", path)
	if sent, err := Notify(Ready + "\nSTATUS=serving 2 workers"); !sent || err != nil {
		t.Fatalf("sent %v, %v", sent, err)
	}
	if got := receive(t, c); got != "READY=1\nSTATUS=serving 2 workers" {
		t.Errorf("received %q", got)
	}
	// The abstract namespace.
	abstract := "@fastnat-test-" + strconv.Itoa(os.Getpid())
	ca := listen(t, "\x00"+abstract[1:])
	t.Setenv("NOTIFY_SOCKET", abstract)
	if sent, err := Notify(Stopping); !sent || err != nil {
		t.Fatalf("abstract: sent %v, %v", sent, err)
	}
	if got := receive(t, ca); got != Stopping {
		t.Errorf("received %q", got)
	}
	// Not under systemd: nothing to do, no error.
	t.Setenv("NOTIFY_SOCKET", "")
	if sent, err := Notify(Ready); sent || err != nil {
		t.Errorf("without a socket: sent %v, %v", sent, err)
	}
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody"))
	if _, err := Notify(Ready); err == nil {
		t.Error("a missing socket is not an error")
	}
}

func TestWatchdogInterval(t *testing.T) {
	for _, tc := range []struct {
		usec, pid string
		want      time.Duration
	}{
		{"", "", 0},
		{"10000000", "", 5 * time.Second},
		{"10000000", strconv.Itoa(os.Getpid()), 5 * time.Second},
		{"10000000", "1", 0}, // another process's watchdog
		{"0", "", 0},
		{"x", "", 0},
	} {
		t.Setenv("WATCHDOG_USEC", tc.usec)
		t.Setenv("WATCHDOG_PID", tc.pid)
		if got := WatchdogInterval(); got != tc.want {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: %v, want %v", tc.usec, tc.pid, got, tc.want)
		}
	}
}
