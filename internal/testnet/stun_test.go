package testnet

import (
	"net/netip"
	"slices"
	"testing"
)

// discoveryOutput is turnutils_natdiscovery -H -m -f as coturn 4.6 prints
// it through an endpoint-independent NAT that hairpins and filters by
// address and port (shortened).
const discoveryOutput = `
-= Hairpinning Behavior Discovery =-

========================================
RFC 5780 response 1
No ALG: Mapped == XOR-Mapped
0: : IPv4. Response origin: : 198.18.0.1:3478
0: : IPv4. Other addr: : 198.18.0.2:3479
0: : IPv4. UDP reflexive addr: 198.18.0.204:60172
0: : IPv4. Local addr: : 0.0.0.0:60172
Received a request (maybe a successful hairpinning)

-= Mapping Behavior Discovery =-

========================================
RFC 5780 response 2
No ALG: Mapped == XOR-Mapped
0: : IPv4. Response origin: : 198.18.0.1:3478
0: : IPv4. Other addr: : 198.18.0.2:3479
0: : IPv4. UDP reflexive addr: 198.18.0.204:49515
0: : IPv4. Local addr: : 0.0.0.0:49515

========================================
NAT with Endpoint Independent Mapping!
========================================

-= Filtering Behavior Discovery =-
STUN receive timeout..
STUN receive timeout..

========================================
NAT with Address and Port Dependent Filtering!
========================================
`

func TestParseDiscovery(t *testing.T) {
	d := ParseDiscovery(discoveryOutput)
	if d.Mapping != "Endpoint Independent" || d.Filtering != "Address and Port Dependent" || !d.Hairpin || d.Timeouts != 2 {
		t.Errorf("parsed %+v", d)
	}
	want := []STUNResponse{
		{netip.MustParseAddrPort("198.18.0.204:60172"), netip.MustParseAddrPort("0.0.0.0:60172")},
		{netip.MustParseAddrPort("198.18.0.204:49515"), netip.MustParseAddrPort("0.0.0.0:49515")},
	}
	if !slices.Equal(d.Responses, want) {
		t.Errorf("responses %v, want %v", d.Responses, want)
	}
	if d := ParseDiscovery("STUN receive timeout..\n"); d.Hairpin || d.Mapping != "" || d.Timeouts != 1 {
		t.Errorf("parsed %+v", d)
	}
}

func TestParseClassicSTUN(t *testing.T) {
	const out = `STUN client version 0.97
Opened port 25450 with fd 3
MappedAddress = 198.18.0.205:25450
XorMappedAddress = 198.18.0.205:25450
MappedAddress = 198.18.0.205:27975
test I = 1
Primary: Independent Mapping, Port Dependent Filter, preserves ports, will hairpin	
Return value is 0x000007
`
	c := ParseClassicSTUN(out)
	if c.Type != "Independent Mapping, Port Dependent Filter, preserves ports, will hairpin" || c.Return != 7 ||
		!c.Hairpin() || !c.PreservesPorts() || len(c.Mapped) != 2 || c.Mapped[1] != netip.MustParseAddrPort("198.18.0.205:27975") {
		t.Errorf("parsed %+v", c)
	}
	if c := ParseClassicSTUN("Primary: Dependent Mapping, random port, no hairpin\n"); c.Hairpin() || c.PreservesPorts() {
		t.Errorf("parsed %+v", c)
	}
}

func TestBindingRequest(t *testing.T) {
	b := BindingRequest()
	if len(b) != 20 || b[0] != 0 || b[1] != 1 || b[2] != 0 || b[3] != 0 || b[4] != 0x21 || b[7] != 0x42 {
		t.Errorf("binding request % x", b)
	}
}
