package testnet

import (
	"context"
	"strings"
)

// ClosingStates are the TCP states a socket passes through while its
// connection closes and stays in when the close goes wrong: the side that
// closes second waits in LAST-ACK for the acknowledgement of its FIN, the
// first in FIN-WAIT for its FIN's acknowledgement and the peer's FIN
// (RFC 9293 3.3.2).
var ClosingStates = []string{"last-ack", "fin-wait-1", "fin-wait-2", "closing"}

// ClosingSockets lists the TCP sockets of namespace ns in ClosingStates,
// one `ss` line each ("State Recv-Q Send-Q Local Peer").
func ClosingSockets(ctx context.Context, ns string) ([]string, error) {
	args := []string{"-Htan"}
	for _, s := range ClosingStates {
		args = append(args, "state", s)
	}
	out, err := Run(ctx, ns, "ss", args...)
	if err != nil {
		return nil, err
	}
	var socks []string
	for line := range strings.Lines(string(out)) {
		if l := strings.Join(strings.Fields(line), " "); l != "" {
			socks = append(socks, l)
		}
	}
	return socks, nil
}
