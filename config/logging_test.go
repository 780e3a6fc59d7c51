package config

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/fastnat/fastnat/natlog"
)

// The outbound rule the deterministic and port-block tests vary: the
// 256 addresses of 10.77.0.0/24 on two public addresses.
const detRule = "[[nat.outbound]]\ninside = [\"10.77.0.0/24\"]\npool = [\"198.18.0.204-198.18.0.205\"]\n"

func TestLoggingValues(t *testing.T) {
	c := mustParse(t, `[logging]
ring = 1024
[[logging.ipfix]]
collector = "192.0.2.10:4739"
domain = 7
template_refresh = "30s"
max_message = 1200
events = ["session-create", "SESSION-DELETE"]
[[logging.ipfix]]
collector = "[2001:db8::1]:4739"
[[logging.syslog]]
address = "127.0.0.1:514"
[[logging.syslog]]
transport = "tcp"
address = "192.0.2.11:6514"
facility = "local3"
hostname = "nat1.example"
events = ["block-alloc", "block-release", "quota-exceeded"]
[[logging.syslog]]
transport = "unix"
address = "/dev/log"
`+ifaces)
	want := Logging{
		Ring: 1024,
		IPFIX: []IPFIX{
			{Collector: netip.MustParseAddrPort("192.0.2.10:4739"), Domain: 7, TemplateRefresh: 30 * time.Second, MaxMessage: 1200,
				Events: natlog.TypeSet(0).With(natlog.SessionCreate).With(natlog.SessionDelete), Line: 3},
			{Collector: netip.MustParseAddrPort("[2001:db8::1]:4739"), Domain: 1, TemplateRefresh: time.Minute, MaxMessage: 1400,
				Events: natlog.AllTypes, Line: 9},
		},
		Syslog: []Syslog{
			{Transport: "udp", Address: "127.0.0.1:514", Facility: 16, Events: natlog.AllTypes, Line: 11},
			{Transport: "tcp", Address: "192.0.2.11:6514", Facility: 19, Hostname: "nat1.example",
				Events: natlog.TypeSet(0).With(natlog.BlockAlloc).With(natlog.BlockRelease).With(natlog.QuotaExceeded), Line: 13},
			{Transport: "unix", Address: "/dev/log", Facility: 16, Events: natlog.AllTypes, Line: 19},
		},
	}
	if !reflect.DeepEqual(c.Logging, want) {
		t.Errorf("logging\n%+v\nwant\n%+v", c.Logging, want)
	}
}

func TestAllocationValues(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want Outbound // the fields checked: Mapping, PortsPerHost, BlockSize, BlocksPerHost
	}{
		// 256 hosts on 2 addresses: 128 share one, 64512/128 = 504 ports each.
		{"deterministic default fills the pool", detRule + "mapping = \"deterministic\"\n", Outbound{Mapping: Deterministic, PortsPerHost: 504}},
		{"deterministic explicit", detRule + "mapping = \"deterministic\"\nports_per_host = 500\n", Outbound{Mapping: Deterministic, PortsPerHost: 500}},
		{"deterministic over a port range", detRule + "mapping = \"deterministic\"\nports = \"2000-2999\"\n", Outbound{Mapping: Deterministic, PortsPerHost: 7}},
		{"blocks with the default limit", detRule + "block_size = 512\n", Outbound{BlockSize: 512, BlocksPerHost: 4}},
		{"blocks with a limit", detRule + "mapping = \"address-and-port-dependent\"\nblock_size = 1008\nblocks_per_host = 8\n",
			Outbound{Mapping: AddressAndPortDependent, BlockSize: 1008, BlocksPerHost: 8}},
		{"default limit capped by the blocks per address", detRule + "ports = \"1024-2047\"\nblock_size = 512\n", Outbound{BlockSize: 512, BlocksPerHost: 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := mustParse(t, tc.doc+ifaces).NAT.Outbound[0]
			got := Outbound{Mapping: o.Mapping, PortsPerHost: o.PortsPerHost, BlockSize: o.BlockSize, BlocksPerHost: o.BlocksPerHost}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
