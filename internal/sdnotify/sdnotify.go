// Package sdnotify speaks systemd's notification protocol (sd_notify(3)):
// a service of Type=notify sends newline-separated KEY=VALUE lines in one
// datagram to the unix socket named by $NOTIFY_SOCKET — READY=1 once it
// serves, RELOADING=1 and READY=1 around a reload, STOPPING=1 when it
// stops, WATCHDOG=1 at least every WatchdogSec, and STATUS=... for
// `systemctl status`. A path starting with "@" is in the abstract
// namespace. It is a few lines over net.DialUnix, so no library: without
// $NOTIFY_SOCKET (not under systemd) Notify does nothing.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// Notification states.
const (
	Ready     = "READY=1"
	Reloading = "RELOADING=1"
	Stopping  = "STOPPING=1"
	Watchdog  = "WATCHDOG=1"
)

// Notify sends state (lines such as "READY=1\nSTATUS=serving") to the
// service manager. It reports whether there was one to send to.
func Notify(state string) (bool, error) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return false, nil
	}
	addr := &net.UnixAddr{Name: path, Net: "unixgram"}
	if path[0] == '@' {
		addr.Name = "\x00" + path[1:]
	}
	c, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return false, fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sd_notify: %w", err)
	}
	return true, nil
}

// WatchdogInterval is how often to send WATCHDOG=1: half of
// $WATCHDOG_USEC, as sd_watchdog_enabled(3) advises, when the watchdog is
// on for this process ($WATCHDOG_PID unset or ours); 0 when it is off.
func WatchdogInterval() time.Duration {
	usec, err := strconv.ParseUint(os.Getenv("WATCHDOG_USEC"), 10, 63)
	if err != nil || usec == 0 {
		return 0
	}
	if p := os.Getenv("WATCHDOG_PID"); p != "" && p != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}
