package packet

import (
	"strconv"
	"strings"
)

// protoNames are the names fastnat prints and accepts for the IP protocols
// it handles, lower case as in /etc/protocols.
var protoNames = [...]struct {
	name  string
	proto uint8
}{
	{"icmp", ProtoICMP},
	{"tcp", ProtoTCP},
	{"udp", ProtoUDP},
	{"dccp", ProtoDCCP},
	{"gre", ProtoGRE},
	{"esp", ProtoESP},
	{"ah", ProtoAH},
	{"sctp", ProtoSCTP},
	{"udp-lite", ProtoUDPLite},
}

// ProtoName names an IP protocol for `show`, events and metrics labels:
// the protocols fastnat handles by name, any other by its number.
func ProtoName(p uint8) string {
	for _, n := range protoNames {
		if n.proto == p {
			return n.name
		}
	}
	return strconv.Itoa(int(p))
}

// ParseProtoName is ProtoName's inverse: a name it prints (any case) or a
// protocol number 0–255.
func ParseProtoName(s string) (uint8, bool) {
	lower := strings.ToLower(s)
	for _, n := range protoNames {
		if n.name == lower {
			return n.proto, true
		}
	}
	if n, err := strconv.ParseUint(s, 10, 8); err == nil {
		return uint8(n), true
	}
	return 0, false
}

// ProtoNames lists the names ProtoName prints, in protocol-number order.
func ProtoNames() []string {
	names := make([]string, len(protoNames))
	for i, n := range protoNames {
		names[i] = n.name
	}
	return names
}
