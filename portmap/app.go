package portmap

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/fastnat/fastnat/packet"
)

// App is an application a connection is classified as.
type App uint8

// The applications fastnat knows. Only AppFTP has an ALG; the others are
// labels for statistics. AppFTPData marks data connections created by the
// FTP ALG and cannot be named in a mapping.
const (
	AppOther   App = iota // not classified
	AppFTP                // File Transfer Protocol control connection
	AppTFTP               // Trivial File Transfer Protocol
	AppHTTP               // Hypertext Transfer Protocol
	AppHTTPS              // HTTP over TLS
	AppSSH                // Secure Shell
	AppSMTP               // Simple Mail Transfer Protocol
	AppDNS                // Domain Name System
	AppSIP                // Session Initiation Protocol
	AppH323               // H.323 call signalling
	AppRTSP               // Real Time Streaming Protocol
	AppPPTP               // Point-to-Point Tunnelling Protocol control
	AppFTPData            // FTP data connection opened through the ALG
	appCount
)

var appNames = [appCount]string{
	AppOther:   "other",
	AppFTP:     "ftp",
	AppTFTP:    "tftp",
	AppHTTP:    "http",
	AppHTTPS:   "https",
	AppSSH:     "ssh",
	AppSMTP:    "smtp",
	AppDNS:     "dns",
	AppSIP:     "sip",
	AppH323:    "h323",
	AppRTSP:    "rtsp",
	AppPPTP:    "pptp",
	AppFTPData: "ftp-data",
}

// String returns the application's lower-case name, such as "ftp".
func (a App) String() string {
	if a < appCount {
		return appNames[a]
	}
	return "app(" + strconv.Itoa(int(a)) + ")"
}

// Errors returned by ParseApp and ParseProto; the returned error wraps one of
// them and says what is allowed.
var (
	ErrNameLength   = errors.New("application name must be 1 to 63 characters")
	ErrReservedName = errors.New("reserved application name")
	ErrUnknownApp   = errors.New("unknown application")
	ErrUnknownProto = errors.New("unknown protocol")
)

// MaxNameLen is the longest application name Comware accepts.
const MaxNameLen = 63

// Names lists the application names a mapping may use, in App order.
func Names() []string {
	names := make([]string, 0, appCount)
	for a := AppFTP; a < AppFTPData; a++ {
		names = append(names, appNames[a])
	}
	return names
}

// ParseApp returns the application called name, ignoring case. Like
// Comware it refuses names outside 1–63 characters, the reserved names
// "invalid" and "other", and applications it does not know; "ftp-data" is
// refused too because only the FTP ALG assigns it.
func ParseApp(name string) (App, error) {
	if len(name) < 1 || len(name) > MaxNameLen {
		return AppOther, fmt.Errorf("%w (got %d)", ErrNameLength, len(name))
	}
	lower := strings.ToLower(name)
	switch lower {
	case "invalid", "other":
		return AppOther, fmt.Errorf("%w %q: %q and %q cannot be mapped; known: %s",
			ErrReservedName, name, "invalid", "other", strings.Join(Names(), ", "))
	case appNames[AppFTPData]:
		return AppOther, fmt.Errorf("%w %q: the FTP ALG assigns it to data connections; known: %s",
			ErrReservedName, name, strings.Join(Names(), ", "))
	}
	for a := AppFTP; a < AppFTPData; a++ {
		if appNames[a] == lower {
			return a, nil
		}
	}
	return AppOther, fmt.Errorf("%w %q; known: %s", ErrUnknownApp, name, strings.Join(Names(), ", "))
}

// Transport protocols a mapping may name, as IANA protocol numbers.
// ProtoAny (no protocol) matches every transport protocol.
const (
	ProtoAny     uint8 = 0
	ProtoTCP     uint8 = 6
	ProtoUDP     uint8 = 17
	ProtoDCCP    uint8 = 33
	ProtoSCTP    uint8 = 132
	ProtoUDPLite uint8 = 136
)

// protoNames lists the protocols a mapping may name, in Comware's order.
var protoNames = []struct {
	name  string
	proto uint8
}{
	{"dccp", ProtoDCCP},
	{"sctp", ProtoSCTP},
	{"tcp", ProtoTCP},
	{"udp", ProtoUDP},
	{"udp-lite", ProtoUDPLite},
}

// ProtoNames lists the protocol names ParseProto accepts.
func ProtoNames() []string {
	names := make([]string, len(protoNames))
	for i, p := range protoNames {
		names[i] = p.name
	}
	return names
}

// ParseProto returns the IANA number of a protocol a mapping may name:
// dccp, sctp, tcp, udp or udp-lite, ignoring case.
func ParseProto(name string) (uint8, error) {
	lower := strings.ToLower(name)
	for _, p := range protoNames {
		if p.name == lower {
			return p.proto, nil
		}
	}
	return 0, fmt.Errorf("%w %q; allowed: %s", ErrUnknownProto, name, strings.Join(ProtoNames(), ", "))
}

// ProtoName returns the name of an IANA protocol number: "any" for
// ProtoAny, otherwise the name packet.ProtoName prints (the number for a
// protocol fastnat has no name for), so a rule's protocol reads the same in
// config errors, `show rules` and `show sessions`.
func ProtoName(p uint8) string {
	if p == ProtoAny {
		return "any"
	}
	return packet.ProtoName(p)
}

// protoSlot gives each mappable protocol its position in a cell; 0 is the
// protocol-less entry and other protocols have no slot of their own.
var protoSlot = [256]uint8{ProtoTCP: 1, ProtoUDP: 2, ProtoDCCP: 3, ProtoSCTP: 4, ProtoUDPLite: 5}

const numSlots = 6
