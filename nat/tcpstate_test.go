package nat

import (
	"testing"

	"github.com/fastnat/fastnat/packet"
)

func TestTCPStateMachine(t *testing.T) {
	const (
		syn = packet.FlagSYN
		ack = packet.FlagACK
		fin = packet.FlagFIN
		rst = packet.FlagRST
	)
	type step struct {
		reply bool
		flags uint8
		want  string
		class int
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"handshake and close", []step{
			{false, syn, "SYN_SENT", toTCPSyn},
			{true, syn | ack, "SYN_RECV", toTCPSyn},
			{false, ack, "ESTABLISHED", toTCPEstablished},
			{true, ack, "ESTABLISHED", toTCPEstablished},
			{false, fin | ack, "FIN_WAIT", toTCPTransitory},
			{true, fin | ack, "FIN_WAIT", toTCPTransitory},
		}},
		{"reset", []step{
			{false, syn, "SYN_SENT", toTCPSyn},
			{true, rst | ack, "CLOSED", toTCPTransitory},
		}},
		{"reuse after close", []step{
			{false, syn, "SYN_SENT", toTCPSyn},
			{true, rst, "CLOSED", toTCPTransitory},
			{false, syn, "SYN_SENT", toTCPSyn},
		}},
		{"reply SYN without our SYN does not advance", []step{
			{true, syn | ack, "-", toTCPTransitory},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := tcpNone
			for i, s := range c.steps {
				var class int
				st, class = nextTCP(st, s.reply, s.flags)
				if TCPStateName(st) != s.want || class != s.class {
					t.Fatalf("step %d: state %s class %d, want %s %d", i, TCPStateName(st), class, s.want, s.class)
				}
			}
		})
	}
}
