package nat

import "github.com/fastnat/fastnat/packet"

// TCP connection states kept in the session for timeouts (RFC 5382 §5:
// established idle timeout at least 2h4m, transitory 4 minutes). The two
// high bits remember which sides have sent a FIN.
const (
	tcpNone uint8 = iota
	tcpSynSent
	tcpSynRecv
	tcpEstablished
	tcpClosing // a FIN from one side, or both
	tcpClosed  // RST seen

	tcpStateMask       = 0x0f
	tcpFinOrig   uint8 = 0x10
	tcpFinReply  uint8 = 0x20
)

// TCPStateName names a session's TCP state for display.
func TCPStateName(state uint8) string {
	switch state & tcpStateMask {
	case tcpSynSent:
		return "SYN_SENT"
	case tcpSynRecv:
		return "SYN_RECV"
	case tcpEstablished:
		return "ESTABLISHED"
	case tcpClosing:
		return "FIN_WAIT"
	case tcpClosed:
		return "CLOSED"
	}
	return "-"
}

// nextTCP returns the state after a segment with flags travelling in
// direction reply (false = Orig) and the timeout class that state uses.
func nextTCP(state uint8, reply bool, flags uint8) (uint8, int) {
	s, fins := state&tcpStateMask, state&^tcpStateMask
	switch {
	case flags&packet.FlagRST != 0:
		s = tcpClosed
	case flags&packet.FlagSYN != 0 && flags&packet.FlagACK == 0 && !reply:
		if s == tcpNone || s >= tcpClosing {
			s, fins = tcpSynSent, 0 // a new connection reusing the tuple
		}
	case flags&packet.FlagSYN != 0 && reply:
		if s == tcpSynSent {
			s = tcpSynRecv
		}
	case flags&packet.FlagFIN != 0:
		if reply {
			fins |= tcpFinReply
		} else {
			fins |= tcpFinOrig
		}
		s = tcpClosing
	case flags&packet.FlagACK != 0 && s == tcpSynRecv && !reply:
		s = tcpEstablished
	}
	switch s {
	case tcpSynSent, tcpSynRecv:
		return s | fins, toTCPSyn
	case tcpEstablished:
		return s | fins, toTCPEstablished
	}
	return s | fins, toTCPTransitory
}
