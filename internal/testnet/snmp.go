package testnet

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// UDPRcvbufErrors reads namespace ns's UDP receive-buffer overflows: the
// RcvbufErrors counter of /proc/net/snmp, the datagrams its sockets
// dropped because the receiving application left their buffers full.
func UDPRcvbufErrors(ns string) (uint64, error) { return SNMPCounter(ns, "Udp", "RcvbufErrors") }

// SNMPCounter reads counter name of group ("Ip", "Udp", ...) from
// namespace ns's /proc/net/snmp (per namespace, so read from a thread in
// ns).
func SNMPCounter(ns, group, name string) (uint64, error) {
	var b []byte
	if err := Do(ns, func() error {
		var err error
		b, err = os.ReadFile("/proc/thread-self/net/snmp")
		return err
	}); err != nil {
		return 0, err
	}
	var names []string
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != group+":" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == name && i < len(f) {
				return strconv.ParseUint(f[i], 10, 64)
			}
		}
		break
	}
	return 0, fmt.Errorf("no %s %s in /proc/net/snmp of %s", group, name, ns)
}
