package portmap

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
)

func FuzzParseApp(f *testing.F) {
	for _, s := range []string{"ftp", "FTP", "other", "invalid", "ftp-data", "", strings.Repeat("x", 64), "h323"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		a, err := ParseApp(name)
		if err != nil {
			if a != AppOther {
				t.Fatalf("ParseApp(%q) failed but returned %v", name, a)
			}
			return
		}
		if a == AppOther || a >= AppFTPData || a.String() != strings.ToLower(name) {
			t.Fatalf("ParseApp(%q) = %v", name, a)
		}
	})
}

func FuzzParseProto(f *testing.F) {
	for _, s := range []string{"tcp", "UDP", "udp-lite", "icmp", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		p, err := ParseProto(name)
		if err == nil && ProtoName(p) != strings.ToLower(name) {
			t.Fatalf("ParseProto(%q) = %d named %q", name, p, ProtoName(p))
		}
	})
}

// FuzzLookup builds a table from arbitrary mappings (8 bytes each) and
// checks every lookup the input also describes against the oracle.
func FuzzLookup(f *testing.F) {
	f.Add([]byte("\x01\x23\x83\x06\x0a\x01\x02\x03\x20"), []byte("\x06\x0a\x01\x02\x03\x23\x83"))
	f.Add([]byte("\x02\x00\x15\x00\x00\x00\x00\x00\x00\x01\x00\x15\x11\xc6\x12\x00\xcc\x1e"), []byte("\x11\xc6\x12\x00\xcc\x00\x15"))
	protos := []uint8{ProtoAny, ProtoTCP, ProtoUDP, ProtoDCCP, ProtoSCTP, ProtoUDPLite}
	f.Fuzz(func(t *testing.T, mdata, qdata []byte) {
		var ms []Mapping
		for len(mdata) >= 9 && len(ms) < 64 {
			m := Mapping{
				App:   App(mdata[0] % uint8(appCount)),
				Port:  binary.BigEndian.Uint16(mdata[1:]),
				Proto: protos[int(mdata[3])%len(protos)],
			}
			if bits := int(mdata[8]); bits <= 32 {
				a := netip.AddrFrom4([4]byte(mdata[4:8]))
				m.Hosts = []netip.Prefix{netip.PrefixFrom(a, bits)}
			}
			ms = append(ms, m)
			mdata = mdata[9:]
		}
		tab, _ := Build(ms)
		for len(qdata) >= 7 {
			proto := qdata[0]
			dst := binary.BigEndian.Uint32(qdata[1:])
			port := binary.BigEndian.Uint16(qdata[5:])
			app, idx := tab.Lookup(proto, dst, port)
			oapp, oidx := slowLookup(ms, proto, dst, port)
			if app != oapp || idx != oidx {
				t.Fatalf("Lookup(%d, %#x, %d) = %v, %d; oracle %v, %d", proto, dst, port, app, idx, oapp, oidx)
			}
			qdata = qdata[7:]
		}
	})
}
