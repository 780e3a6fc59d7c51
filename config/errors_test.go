package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestErrorClasses feeds one broken document per class of mistake and
// checks every reported problem: its line, its column and a part of the
// message that says what is wrong or what is allowed. Documents put
// their subject first so that the lines are easy to count; most end with
// ifaces, which makes them otherwise valid.
func TestErrorClasses(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // "line:col: part of the message"
	}{
		// Syntax.
		{"unclosed table header", "[dataplane\nbatch = 1\n", []string{"1:11: syntax error: expected ']' to close table name"}},
		{"missing value", "[dataplane]\nbatch =\n", []string{"2:8: syntax error"}},
		{"bare word value", "[dataplane]\npoll = adaptive\n", []string{"2:8: syntax error"}},
		{"unterminated string", "[metrics]\nlisten = \"x\n", []string{"2:12: syntax error: basic strings cannot have new lines"}},
		{"integer overflow", "[flows]\nmax = 99999999999999999999\n" + ifaces, []string{"2:7: flows.max: "}},

		// Schema: keys and the shape of tables.
		{"unknown top-level table", "[dataplan]\nbatch = 1\n" + ifaces,
			[]string{`1:2: unknown key "dataplan" at the top level; allowed: dataplane, interface, flows, timeouts, nat, port_mapping, alg, icmp, tcp, metrics, control, logging`}},
		{"unknown key in a table", "[dataplane]\nbatch = 1\n  btach = 2\n" + ifaces,
			[]string{`3:3: unknown key "btach" in [dataplane]; allowed: workers, cpus, poll, batch, frames_per_queue, frame_size, xdp_mode`}},
		{"unknown keys in array tables, all at once", "[[port_mapping]]\napplication = \"ftp\"\nport = 1\nproto = \"tcp\"\n[[port_mapping]]\napplication = \"ftp\"\nport = 2\nhost = \"x\"\n" + ifaces,
			[]string{`4:1: unknown key "proto" in [[port_mapping]]; allowed: application, port, protocol, hosts`, `8:1: unknown key "host" in [[port_mapping]]`}},
		{"unknown key in an inline table", "[nat]\nserver = [{protocol = \"tcp\", port = 1, public = \"198.18.0.1:1\", inside = \"10.0.0.1:1\"}]\n" + ifaces,
			[]string{`2:30: unknown key "port" in [[nat.server]]`}},
		{"unknown dotted key", "alg.tftp.enabled = true\n" + ifaces, []string{`1:5: unknown key "tftp" in [alg]; allowed: ftp`}},
		{"unknown nested table", "[alg.ftp.extra]\n" + ifaces, []string{`1:10: unknown key "extra" in [alg.ftp]`}},
		{"single table written as array", "[[dataplane]]\n" + ifaces, []string{"1:1: [dataplane] is a single table: write [dataplane], not [[dataplane]]"}},
		{"array table written as single", "[interface]\nname = \"x\"\n" + ifaces, []string{"1:1: interface is a list of tables: write [[interface]]"}},
		{"table given a value", "dataplane = 5\n" + ifaces, []string{"1:13: dataplane is a table: write [dataplane]"}},
		{"table given an array", "flows = [1]\n" + ifaces, []string{"1:9: flows is a table, not an array: write [flows]"}},
		{"array table given an inline table", "interface = {name = \"x\"}\n", []string{"1:13: interface is a list of tables"}},
		{"array table given a scalar", "port_mapping = 5\n" + ifaces, []string{"1:16: port_mapping is a list of tables"}},
		{"table defined twice", "[flows]\nmax = 1\n[flows]\n" + ifaces, []string{"3:1: table [flows] is already defined at line 1"}},
		{"key set twice", "[flows]\nmax = 1\nmax = 2\n" + ifaces, []string{"3:7: flows.max is already set at line 2"}},

		// Types.
		{"string for integer", "[dataplane]\nworkers = \"2\"\n" + ifaces, []string{`2:11: dataplane.workers: want an integer from 0 to 1024, got the string "2"`}},
		{"float for integer", "[dataplane]\nbatch = 64.0\n" + ifaces, []string{"2:9: dataplane.batch: want an integer from 1 to 512, got the float 64"}},
		{"integer for string", "[dataplane]\npoll = 1\n" + ifaces, []string{"2:8: dataplane.poll: want a string (\"adaptive\", \"busy\" or \"interrupt\"), got the integer 1"}},
		{"string for boolean", "[alg.ftp]\nenabled = \"yes\"\n" + ifaces, []string{`2:11: alg.ftp.enabled: want true or false, got the string "yes"`}},
		{"scalar for array", "[dataplane]\ncpus = 1\n" + ifaces, []string{"2:8: dataplane.cpus: want an array of CPU numbers, got the integer 1"}},
		{"table for string", "[dataplane.poll]\nx = 1\n" + ifaces, []string{"1:1: dataplane.poll: want a string"}},
		{"date for string", "[metrics]\nlisten = 2020-01-01\n" + ifaces, []string{"2:10: metrics.listen: want a string"}},

		// [dataplane] values.
		{"workers negative", "[dataplane]\nworkers = -1\n" + ifaces, []string{"2:11: dataplane.workers: -1 is out of range; allowed: 0 to 1024"}},
		{"cpus negative and twice", "[dataplane]\ncpus = [0, -3, 0]\n" + ifaces,
			[]string{"2:12: dataplane.cpus[1]: -3 is out of range; allowed: 0 to 8191", "2:16: dataplane.cpus[2]: 0 is listed twice (also at dataplane.cpus[0])"}},
		{"cpus empty", "[dataplane]\ncpus = []\n" + ifaces, []string{"2:8: dataplane.cpus: empty array"}},
		{"poll unknown", "[dataplane]\npoll = \"spin\"\n" + ifaces, []string{`2:8: dataplane.poll: "spin" is not allowed; allowed: "adaptive", "busy" or "interrupt"`}},
		{"batch zero", "[dataplane]\nbatch = 0\n" + ifaces, []string{"2:9: dataplane.batch: 0 is out of range; allowed: 1 to 512"}},
		{"batch too big", "[dataplane]\nbatch = 513\n" + ifaces, []string{"2:9: dataplane.batch: 513 is out of range; allowed: 1 to 512"}},
		{"frames not a power of two", "[dataplane]\nframes_per_queue = 3000\n" + ifaces, []string{"2:20: dataplane.frames_per_queue: 3000 is not a power of two"}},
		{"frames fewer than two batches", "[dataplane]\nbatch = 512\nframes_per_queue = 512\n" + ifaces,
			[]string{"3:20: dataplane.frames_per_queue: 512 frames cannot hold two bursts of batch = 512; allowed: at least 1024"}},
		{"frames too small", "[dataplane]\nframes_per_queue = 32\n" + ifaces, []string{"2:20: dataplane.frames_per_queue: 32 is out of range; allowed: 64 to 1048576"}},
		{"frame size", "[dataplane]\nframe_size = 1500\n" + ifaces, []string{"2:14: dataplane.frame_size: want 2048 or 4096 (bytes per UMEM frame), got the integer 1500"}},
		{"xdp mode", "[dataplane]\nxdp_mode = \"skb\"\n" + ifaces, []string{`2:12: dataplane.xdp_mode: "skb" is not allowed; allowed: "auto", "native" or "generic"`}},

		// Interfaces.
		{"no interfaces", "[flows]\nmax = 10\n", []string{"1:1: no [[interface]] tables; at least one with role = \"inside\" and one with role = \"outside\" are required"}},
		{"no outside interface", "[[interface]]\nname = \"eth0\"\nrole = \"inside\"\n", []string{`1:1: no interface has role = "outside"`}},
		{"no inside interface", "[[interface]]\nname = \"eth0\"\nrole = \"outside\"\n", []string{`1:1: no interface has role = "inside"`}},
		{"missing name and role", "[[interface]]\nqueues = \"all\"\n" + ifaces,
			[]string{`1:1: interface[0]: missing key "name"`, `1:1: interface[0]: missing key "role"; allowed: "inside" or "outside"`}},
		{"bad role", "[[interface]]\nname = \"x\"\nrole = \"lan\"\n" + ifaces, []string{`3:8: interface[0].role: "lan" is not allowed; allowed: "inside" or "outside"`}},
		{"name too long", "[[interface]]\nname = \"a-very-long-ifname\"\nrole = \"inside\"\n" + ifaces, []string{"2:8: interface[0].name: \"a-very-long-ifname\" is longer than 15 bytes"}},
		{"name with slash", "[[interface]]\nname = \"a/b\"\nrole = \"inside\"\n" + ifaces, []string{"2:8: interface[0].name: \"a/b\" contains '/'"}},
		{"duplicate name", ifaces + "[[interface]]\nname = \"eth1\"\nrole = \"inside\"\n", []string{`9:8: interface[2].name: interface "eth1" is already defined at line 5`}},
		{"queues word", "[[interface]]\nname = \"x\"\nrole = \"inside\"\nqueues = \"some\"\n" + ifaces, []string{`4:10: interface[0].queues: "some" is not allowed; write "all" or an array`}},
		{"queues out of range", "[[interface]]\nname = \"x\"\nrole = \"inside\"\nqueues = [0, 1024]\n" + ifaces, []string{"4:14: interface[0].queues[1]: 1024 is out of range; allowed: 0 to 1023"}},
		{"gateway not an address", "[[interface]]\nname = \"x\"\nrole = \"inside\"\ngateway = \"router\"\n" + ifaces, []string{`4:11: interface[0].gateway: "router" is not an IPv4 address`}},
		{"gateway IPv6", "[[interface]]\nname = \"x\"\nrole = \"inside\"\ngateway = \"fe80::1\"\n" + ifaces, []string{`4:11: interface[0].gateway: "fe80::1" is not an IPv4 address`}},
		{"gateway multicast", "[[interface]]\nname = \"x\"\nrole = \"inside\"\ngateway = \"224.0.0.1\"\n" + ifaces, []string{"4:11: interface[0].gateway: 224.0.0.1 is a multicast address"}},

		// [flows] and [timeouts].
		{"flows zero", "[flows]\nmax = 0\n" + ifaces, []string{"2:7: flows.max: 0 is out of range; allowed: 1 to 268435456"}},
		{"duration without unit", "[timeouts]\nudp = \"300\"\n" + ifaces, []string{`2:7: timeouts.udp: "300" is not a duration; want a duration such as "30s", "5m" or "2h4m"`}},
		{"duration as integer", "[timeouts]\nudp = 300\n" + ifaces, []string{"2:7: timeouts.udp: want a string (a duration such as"}},
		{"duration zero", "[timeouts]\ntcp_syn = \"0s\"\n" + ifaces, []string{"2:11: timeouts.tcp_syn: 0s is out of range; allowed: 1s to 168h"}},
		{"duration negative", "[timeouts]\nicmp = \"-1m\"\n" + ifaces, []string{"2:8: timeouts.icmp: -1m is out of range"}},
		{"duration too long", "[timeouts]\nexpectation = \"200h\"\n" + ifaces, []string{"2:15: timeouts.expectation: 200h is out of range"}},
		{"duration fraction", "[timeouts]\ntcp_syn = \"1.5s\"\n" + ifaces, []string{"2:11: timeouts.tcp_syn: 1.5s is not a whole number of seconds"}},
		{"tcp_closed zero", "[timeouts]\ntcp_closed = \"0s\"\n" + ifaces, []string{"2:14: timeouts.tcp_closed: 0s is out of range; allowed: 1s to 168h"}},
		{"tcp_closed too long", "[timeouts]\nudp = \"5m\"\ntcp_closed = \"169h\"\n" + ifaces, []string{"3:14: timeouts.tcp_closed: 169h is out of range"}},
		{"tcp_closed not a duration", "[timeouts]\ntcp_closed = \"10\"\n" + ifaces, []string{`2:14: timeouts.tcp_closed: "10" is not a duration`}},

		// [[nat.outbound]].
		{"outbound missing inside and pool", "[[nat.outbound]]\nports = \"1024-2047\"\n" + ifaces,
			[]string{`1:1: nat.outbound[0]: missing key "inside"`, `1:1: nat.outbound[0]: missing key "pool"`}},
		{"inside empty", "[[nat.outbound]]\ninside = []\npool = [\"198.18.0.1\"]\n" + ifaces, []string{"2:10: nat.outbound[0].inside: empty array"}},
		{"inside not a prefix", "[[nat.outbound]]\ninside = [\"10.0.0.1\"]\npool = [\"198.18.0.1\"]\n" + ifaces,
			[]string{`2:11: nat.outbound[0].inside[0]: "10.0.0.1" is not an IPv4 prefix such as "10.0.0.0/24"`}},
		{"inside host bits", "[[nat.outbound]]\ninside = [\"10.0.0.0/8\", \"10.77.0.1/24\"]\npool = [\"198.18.0.1\"]\n" + ifaces,
			[]string{`2:25: nat.outbound[0].inside[1]: "10.77.0.1/24" has host bits set; write the network, 10.77.0.0/24`}},
		{"inside IPv6", "[[nat.outbound]]\ninside = [\"fd00::/8\"]\npool = [\"198.18.0.1\"]\n" + ifaces, []string{`2:11: nat.outbound[0].inside[0]: "fd00::/8" is not an IPv4 prefix`}},
		{"pool empty", "[[nat.outbound]]\ninside = [\"10.0.0.0/8\"]\npool = []\n" + ifaces, []string{"3:8: nat.outbound[0].pool: empty pool"}},
		{"pool garbage", "[[nat.outbound]]\ninside = [\"10.0.0.0/8\"]\npool = [\"public\"]\n" + ifaces,
			[]string{`3:9: nat.outbound[0].pool[0]: "public" is not an IPv4 address; want an address "198.18.0.1", a range "198.18.0.1-198.18.0.9" or a prefix "198.18.0.0/28"`}},
		{"pool range reversed", "[[nat.outbound]]\ninside = [\"10.0.0.0/8\"]\npool = [\"198.18.0.9-198.18.0.1\"]\n" + ifaces,
			[]string{`3:9: nat.outbound[0].pool[0]: range "198.18.0.9-198.18.0.1" ends before it starts`}},
		{"pool duplicate", "[[nat.outbound]]\ninside = [\"10.0.0.0/8\"]\npool = [\"198.18.0.0/29\", \"198.18.0.3\"]\n" + ifaces,
			[]string{"3:26: nat.outbound[0].pool[1]: 198.18.0.3 is already in the pool (nat.outbound[0].pool[0])"}},
		{"pool too large", "[[nat.outbound]]\ninside = [\"10.0.0.0/8\"]\npool = [\"198.0.0.0/8\"]\n" + ifaces,
			[]string{"3:9: nat.outbound[0].pool[0]: the pool grows beyond 65536 addresses here"}},
		{"pool loopback", "[[nat.outbound]]\ninside = [\"10.0.0.0/8\"]\npool = [\"127.0.0.1\"]\n" + ifaces,
			[]string{"3:9: nat.outbound[0].pool[0]: 127.0.0.1 is a loopback address and cannot be a public address"}},
		{"ports from zero", "[[nat.outbound]]\ninside = [\"10.0.0.0/8\"]\npool = [\"198.18.0.1\"]\nports = \"0-100\"\n" + ifaces,
			[]string{`4:9: nat.outbound[0].ports: "0-100" starts at port 0; allowed: ports 1 to 65535`}},
		{"ports reversed", "[[nat.outbound]]\ninside = [\"10.0.0.0/8\"]\npool = [\"198.18.0.1\"]\nports = \"2000-1000\"\n" + ifaces,
			[]string{`4:9: nat.outbound[0].ports: "2000-1000" ends before it starts`}},
		{"ports beyond 65535", "[[nat.outbound]]\ninside = [\"10.0.0.0/8\"]\npool = [\"198.18.0.1\"]\nports = \"1024-70000\"\n" + ifaces,
			[]string{`4:9: nat.outbound[0].ports: "1024-70000" is not a port range; want a range such as "1024-65535"`}},
		{"ports as array", "[[nat.outbound]]\ninside = [\"10.0.0.0/8\"]\npool = [\"198.18.0.1\"]\nports = [1024, 2048]\n" + ifaces,
			[]string{`4:9: nat.outbound[0].ports: want a range such as "1024-65535" (ports 1 to 65535), got an array`}},
		{"mapping unknown", "[[nat.outbound]]\ninside = [\"10.0.0.0/8\"]\npool = [\"198.18.0.1\"]\nmapping = \"full-cone\"\n" + ifaces,
			[]string{`4:11: nat.outbound[0].mapping: "full-cone" is not allowed; allowed: "endpoint-independent", "address-and-port-dependent" or "deterministic"`}},

		// [[nat.server]].
		{"server missing everything", "[[nat.server]]\n" + ifaces,
			[]string{`1:1: nat.server[0]: missing key "protocol"; allowed: "tcp" or "udp"`, `1:1: nat.server[0]: missing key "public"`, `1:1: nat.server[0]: missing key "inside"`}},
		{"server protocol", "[[nat.server]]\nprotocol = \"sctp\"\npublic = \"198.18.0.1:21\"\ninside = \"10.0.0.1:21\"\n" + ifaces,
			[]string{`2:12: nat.server[0].protocol: "sctp" is not allowed; allowed: "tcp" or "udp"`}},
		{"server public without port", "[[nat.server]]\nprotocol = \"tcp\"\npublic = \"198.18.0.1\"\ninside = \"10.0.0.1:21\"\n" + ifaces,
			[]string{`3:10: nat.server[0].public: "198.18.0.1" is not an IPv4 address and port such as "198.18.0.204:9091"`}},
		{"server port zero", "[[nat.server]]\nprotocol = \"tcp\"\npublic = \"198.18.0.1:0\"\ninside = \"10.0.0.1:21\"\n" + ifaces,
			[]string{`3:10: nat.server[0].public: "198.18.0.1:0" has port 0; allowed: ports 1 to 65535`}},
		{"server inside unspecified", "[[nat.server]]\nprotocol = \"tcp\"\npublic = \"198.18.0.1:21\"\ninside = \"0.0.0.0:21\"\n" + ifaces,
			[]string{"4:10: nat.server[0].inside: 0.0.0.0 is the unspecified address; want a unicast IPv4 address"}},
		{"server published twice", "[[nat.server]]\nprotocol = \"tcp\"\npublic = \"198.18.0.1:21\"\ninside = \"10.0.0.1:21\"\n" +
			"[[nat.server]]\nprotocol = \"tcp\"\npublic = \"198.18.0.1:21\"\ninside = \"10.0.0.2:21\"\n" + ifaces,
			[]string{"7:10: nat.server[1].public: 198.18.0.1:21/tcp is already published by nat.server[0] (line 1)"}},

		// [[port_mapping]].
		{"mapping missing application and port", "[[port_mapping]]\nprotocol = \"tcp\"\n" + ifaces,
			[]string{`1:1: port_mapping[0]: missing key "application"; allowed: ftp, tftp, http, https, ssh, smtp, dns, sip, h323, rtsp, pptp`, `1:1: port_mapping[0]: missing key "port"; allowed: 0 to 65535`}},
		{"mapping unknown application", "[[port_mapping]]\napplication = \"gopher\"\nport = 70\n" + ifaces,
			[]string{`2:15: port_mapping[0].application: unknown application "gopher"; known: ftp, tftp, http`}},
		{"mapping reserved other", "[[port_mapping]]\napplication = \"Other\"\nport = 70\n" + ifaces,
			[]string{`2:15: port_mapping[0].application: reserved application name "Other": "invalid" and "other" cannot be mapped`}},
		{"mapping reserved invalid", "[[port_mapping]]\napplication = \"invalid\"\nport = 70\n" + ifaces,
			[]string{`2:15: port_mapping[0].application: reserved application name "invalid"`}},
		{"mapping name too long", "[[port_mapping]]\napplication = \"" + strings.Repeat("f", 64) + "\"\nport = 70\n" + ifaces,
			[]string{"2:15: port_mapping[0].application: application name must be 1 to 63 characters (got 64)"}},
		{"mapping empty name", "[[port_mapping]]\napplication = \"\"\nport = 70\n" + ifaces,
			[]string{"2:15: port_mapping[0].application: application name must be 1 to 63 characters (got 0)"}},
		{"mapping port too big", "[[port_mapping]]\napplication = \"ftp\"\nport = 65536\n" + ifaces,
			[]string{"3:8: port_mapping[0].port: 65536 is out of range; allowed: 0 to 65535"}},
		{"mapping port as string", "[[port_mapping]]\napplication = \"ftp\"\nport = \"9091\"\n" + ifaces,
			[]string{`3:8: port_mapping[0].port: want an integer from 0 to 65535, got the string "9091"`}},
		{"mapping protocol", "[[port_mapping]]\napplication = \"ftp\"\nport = 9091\nprotocol = \"icmp\"\n" + ifaces,
			[]string{`4:12: port_mapping[0].protocol: unknown protocol "icmp"; allowed: dccp, sctp, tcp, udp, udp-lite (leave protocol out to match every protocol)`}},
		{"mapping hosts", "[[port_mapping]]\napplication = \"ftp\"\nport = 9091\nhosts = [\"10.0.0.0/8\", \"server\"]\n" + ifaces,
			[]string{`4:24: port_mapping[0].hosts[1]: "server" is not an IPv4 prefix such as "10.0.0.0/24" or an address such as "10.0.0.1"`}},
		{"mapping hosts empty", "[[port_mapping]]\napplication = \"ftp\"\nport = 9091\nhosts = []\n" + ifaces,
			[]string{"4:9: port_mapping[0].hosts: empty array"}},

		// [alg.ftp], [metrics], [control].
		{"max expectations", "[alg.ftp]\nmax_expectations = 0\n" + ifaces, []string{"2:20: alg.ftp.max_expectations: 0 is out of range; allowed: 1 to 1024"}},
		// [icmp], [tcp].
		{"icmp rate limit not a duration", "[icmp]\nrate_limit = \"often\"\n" + ifaces, []string{`2:14: icmp.rate_limit: "often" is not a duration; want a duration such as "1s" or "250ms", or "0s" for no limit`}},
		{"icmp rate limit too long", "[icmp]\nrate_limit = \"2h\"\n" + ifaces, []string{"2:14: icmp.rate_limit: 2h is out of range; allowed: 0s (no limit) to 1h"}},
		{"icmp rate limit below a millisecond", "[icmp]\nrate_limit = \"1500us\"\n" + ifaces, []string{"2:14: icmp.rate_limit: 1.5ms is not a whole number of milliseconds"}},
		{"icmp burst zero", "[icmp]\nburst = 0\n" + ifaces, []string{"2:9: icmp.burst: 0 is out of range; allowed: 1 to 1000"}},
		{"mss clamp word", "[tcp]\nmss_clamp = \"auto\"\n" + ifaces, []string{`2:13: tcp.mss_clamp: "auto" is not allowed; allowed: "off", "mtu" or a number of bytes from 536 to 65495`}},
		{"mss clamp too small", "[tcp]\nmss_clamp = 500\n" + ifaces, []string{"2:13: tcp.mss_clamp: 500 is out of range; allowed: 536 to 65495"}},
		{"mss clamp boolean", "[tcp]\nmss_clamp = true\n" + ifaces, []string{`2:13: tcp.mss_clamp: want "off", "mtu" or an integer from 536 to 65495, got the boolean true`}},
		{"metrics without port", "[metrics]\nlisten = \"127.0.0.1\"\n" + ifaces, []string{`2:10: metrics.listen: "127.0.0.1" is not host:port`}},
		{"metrics bad host", "[metrics]\nlisten = \"example.com:9300\"\n" + ifaces, []string{`2:10: metrics.listen: "example.com:9300": the host must be an IP address`}},
		{"metrics port zero", "[metrics]\nlisten = \":0\"\n" + ifaces, []string{`2:10: metrics.listen: ":0" has no valid port`}},
		{"control group", "[control]\ngroup = \"Fast Nat\"\n" + ifaces, []string{`2:9: control.group: "Fast Nat" is not a group name; allowed: a lower-case letter or _`}},
		{"control group type", "[control]\ngroup = 1000\n" + ifaces, []string{`2:9: control.group: want a string (a group name such as "fastnat", or "" for root only), got the integer 1000`}},
		{"socket relative", "[control]\nsocket = \"fastnat.sock\"\n" + ifaces, []string{`2:10: control.socket: "fastnat.sock" is not an absolute path`}},
		{"socket too long", "[control]\nsocket = \"/" + strings.Repeat("s", 120) + "\"\n" + ifaces, []string{"2:10: control.socket: path is 121 bytes long"}},

		// Several problems at once, in document order.
		{"several at once", "[dataplane]\nbatch = 0\n[[nat.server]]\nprotocol = \"icmp\"\npublic = \"198.18.0.1:21\"\ninside = \"10.0.0.1\"\n[[port_mapping]]\napplication = \"other\"\nport = 9091\n" + ifaces,
			[]string{"2:9: dataplane.batch", "4:12: nat.server[0].protocol", "6:10: nat.server[0].inside", "8:15: port_mapping[0].application"}},

		{"unknown keys together with bad values", "[dataplane]\nbatch = 0\nbtach = 1\n[[interface]]\nnmae = \"eth0\"\nrole = \"inside\"\n" + ifaces,
			[]string{"2:9: dataplane.batch: 0 is out of range", `3:1: unknown key "btach" in [dataplane]`, `4:1: interface[0]: missing key "name"`, `5:1: unknown key "nmae" in [[interface]]; allowed: name, role, queues, gateway`}},

		// [logging].
		{"ring not a power of two", "[logging]\nring = 1000\n" + ifaces, []string{"2:8: logging.ring: 1000 is not a power of two"}},
		{"ring too small", "[logging]\nring = 16\n" + ifaces, []string{"2:8: logging.ring: 16 is out of range; allowed: 64 to 4194304"}},
		{"ipfix without collector", "[[logging.ipfix]]\ndomain = 1\n" + ifaces, []string{`1:1: logging.ipfix[0]: missing key "collector"`}},
		{"ipfix collector without port", "[[logging.ipfix]]\ncollector = \"192.0.2.10\"\n" + ifaces,
			[]string{`2:13: logging.ipfix[0].collector: "192.0.2.10" is not an IP address and port such as "192.0.2.10:4739"`}},
		{"ipfix collector a host name", "[[logging.ipfix]]\ncollector = \"collector:4739\"\n" + ifaces,
			[]string{`2:13: logging.ipfix[0].collector: "collector:4739" is not an IP address and port`}},
		{"ipfix collector unspecified", "[[logging.ipfix]]\ncollector = \"0.0.0.0:4739\"\n" + ifaces,
			[]string{`2:13: logging.ipfix[0].collector: 0.0.0.0 is not an address to send to`}},
		{"ipfix bad values", "[[logging.ipfix]]\ncollector = \"192.0.2.10:4739\"\ndomain = -1\ntemplate_refresh = \"0s\"\nmax_message = 100\n" + ifaces,
			[]string{"3:10: logging.ipfix[0].domain: -1 is out of range; allowed: 0 to 4294967295",
				"4:20: logging.ipfix[0].template_refresh: 0s is out of range",
				"5:15: logging.ipfix[0].max_message: 100 is out of range; allowed: 512 to 65535"}},
		{"events unknown, twice and empty", "[[logging.ipfix]]\ncollector = \"192.0.2.10:4739\"\nevents = [\"session\", \"block-alloc\", \"block-alloc\"]\n[[logging.syslog]]\naddress = \"192.0.2.10:514\"\nevents = []\n" + ifaces,
			[]string{`3:11: logging.ipfix[0].events[0]: "session" is not an event type; allowed: session-create, session-delete`,
				"3:37: logging.ipfix[0].events[2]: block-alloc is listed twice (also at logging.ipfix[0].events[1])",
				"6:10: logging.syslog[0].events: empty array"}},
		{"syslog transport, facility and hostname", "[[logging.syslog]]\ntransport = \"tls\"\naddress = \"192.0.2.10:514\"\nfacility = \"local8\"\nhostname = \"my host\"\n" + ifaces,
			[]string{`2:13: logging.syslog[0].transport: "tls" is not allowed; allowed: "udp", "tcp" or "unix"`,
				`4:12: logging.syslog[0].facility: "local8" is not allowed; allowed: "kern", "user"`,
				`5:12: logging.syslog[0].hostname: "my host": a syslog HOSTNAME is 1 to 255 printable ASCII characters`}},
		{"syslog unix path relative", "[[logging.syslog]]\ntransport = \"unix\"\naddress = \"dev/log\"\n" + ifaces,
			[]string{`3:11: logging.syslog[0].address: "dev/log" is not an absolute path`}},
		{"syslog without address", "[[logging.syslog]]\ntransport = \"udp\"\n" + ifaces, []string{`1:1: logging.syslog[0]: missing key "address"`}},
		{"unknown logging key", "[logging]\nrings = 1\n" + ifaces, []string{`2:1: unknown key "rings" in [logging]; allowed: ring, ipfix, syslog`}},

		// Port blocks and deterministic mapping.
		{"deterministic pool too small", detRule + "mapping = \"deterministic\"\nports_per_host = 1000\n" + ifaces,
			[]string{"5:18: nat.outbound[0].ports_per_host: 256 inside addresses need 256 port ranges of 1000 ports, and 2 pool addresses hold 128 of them (64 each in 1024-65535); need 4 pool addresses, or ports_per_host of at most 504"}},
		{"deterministic leaves less than a port", "[[nat.outbound]]\ninside = [\"10.0.0.0/16\"]\npool = [\"198.18.0.1\"]\nports = \"60000-60009\"\nmapping = \"deterministic\"\n" + ifaces,
			[]string{"5:11: nat.outbound[0].mapping: 65536 inside addresses on 1 pool addresses of 10 ports (60000-60009) leave less than one port each"}},
		{"deterministic overlapping prefixes", "[[nat.outbound]]\ninside = [\"10.0.0.0/16\", \"10.0.1.0/24\"]\npool = [\"198.18.0.1\"]\nmapping = \"deterministic\"\n" + ifaces,
			[]string{"2:26: nat.outbound[0].inside[1]: 10.0.1.0/24 overlaps 10.0.0.0/16 (nat.outbound[0].inside[0])"}},
		{"deterministic too many hosts", "[[nat.outbound]]\ninside = [\"10.0.0.0/7\"]\npool = [\"198.18.0.0/16\"]\nmapping = \"deterministic\"\n" + ifaces,
			[]string{"2:11: nat.outbound[0].inside[0]: 10.0.0.0/7 has more than 16777216 addresses"}},
		{"ports_per_host without deterministic", detRule + "ports_per_host = 100\n" + ifaces,
			[]string{`4:18: nat.outbound[0].ports_per_host: applies to mapping = "deterministic" only; this rule's mapping is "endpoint-independent"`}},
		{"blocks on a deterministic rule", detRule + "mapping = \"deterministic\"\nblock_size = 512\n" + ifaces,
			[]string{"5:14: nat.outbound[0].block_size: a deterministic rule gives every inside host one fixed range"}},
		{"blocks_per_host without block_size", detRule + "blocks_per_host = 2\n" + ifaces,
			[]string{"4:19: nat.outbound[0].blocks_per_host: needs block_size"}},
		{"block larger than the range", detRule + "ports = \"1024-2047\"\nblock_size = 2048\n" + ifaces,
			[]string{"5:14: nat.outbound[0].block_size: 2048 ports do not fit the port range 1024-2047 (1024 ports); allowed: at most 1024"}},
		{"block size and limit out of range", detRule + "block_size = 0\n[[nat.outbound]]\ninside = [\"10.78.0.0/24\"]\npool = [\"198.18.1.1\"]\nblock_size = 64\nblocks_per_host = 2000\n" + ifaces,
			[]string{"4:14: nat.outbound[0].block_size: 0 is out of range; allowed: 16 to 32768",
				"9:19: nat.outbound[1].blocks_per_host: 2000 is out of range; allowed: 1 to 1024"}},
		{"shared pool address", detRule + "block_size = 512\n[[nat.outbound]]\ninside = [\"10.78.0.0/24\"]\npool = [\"198.18.0.205\"]\n" + ifaces,
			[]string{"7:8: nat.outbound[1].pool: 198.18.0.205 is also in the pool of nat.outbound[0] (line 1); nat.outbound[0] allocates every port of its pool addresses itself"}},

		// Columns count characters, not bytes.
		{"column after non-ASCII", "[[interface]] # «inside»\nname = \"é\" ; role = 1\n", []string{"2:12: syntax error"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("t.toml", []byte(tc.doc))
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("Parse accepted the document (%v) or failed without Errors: %v", cfg, err)
			}
			if len(es) != len(tc.want) {
				t.Errorf("%d errors, want %d:\n%v", len(es), len(tc.want), err)
			}
			for i, w := range tc.want {
				if i >= len(es) {
					break
				}
				got := fmt.Sprintf("%d:%d: %s", es[i].Line, es[i].Col, es[i].Msg)
				if !strings.HasPrefix(got, w) {
					t.Errorf("error %d:\n got %s\nwant %s...", i, got, w)
				}
				if es[i].File != "t.toml" {
					t.Errorf("error %d names file %q", i, es[i].File)
				}
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"mapping overwritten", "[[port_mapping]]\napplication = \"ftp\"\nport = 9091\n[[port_mapping]]\napplication = \"http\"\nport = 9091\n" + ifaces,
			[]string{"5:15: port_mapping[1].application: overwrites port_mapping[0] (line 1): port 9091, protocol any, scope any destination was ftp and is now http; the last mapping in the file wins"}},
		{"same mapping twice is quiet", "[[port_mapping]]\napplication = \"ftp\"\nport = 9091\n[[port_mapping]]\napplication = \"ftp\"\nport = 9091\n" + ifaces, nil},
		{"well-known port taken over", "[[port_mapping]]\napplication = \"http\"\nport = 21\n" + ifaces,
			[]string{"3:8: port_mapping[0].port: port 21/tcp is ftp's well-known port; for every destination this mapping makes it http instead"}},
		{"well-known port taken over for both protocols", "[[port_mapping]]\napplication = \"ftp\"\nport = 53\nhosts = [\"10.0.0.1\"]\n" + ifaces,
			[]string{"3:8: port_mapping[0].port: port 53/tcp is dns's well-known port; for destinations in hosts this mapping makes it ftp instead",
				"3:8: port_mapping[0].port: port 53/udp is dns's well-known port"}},
		{"other protocol leaves the default", "[[port_mapping]]\napplication = \"tftp\"\nport = 21\nprotocol = \"udp\"\n" + ifaces, nil},
		{"timeouts below the RFCs", "[timeouts]\ntcp_established = \"1h\"\ntcp_transitory = \"1m\"\nudp = \"30s\"\nicmp = \"10s\"\ntcp_syn = \"5s\"\n" + ifaces,
			[]string{"2:19: timeouts.tcp_established: 1h is below the RFC 5382 REQ-5 minimum of 2h4m",
				"3:18: timeouts.tcp_transitory: 1m is below the RFC 5382 REQ-5 minimum of 4m",
				"4:7: timeouts.udp: 30s is below the RFC 4787 REQ-5 minimum of 2m",
				"5:8: timeouts.icmp: 10s is below the RFC 5508 REQ-1 minimum of 1m"}},
		{"outbound prefix shadowed", "[[nat.outbound]]\ninside = [\"10.0.0.0/8\"]\npool = [\"198.18.0.1\"]\n[[nat.outbound]]\ninside = [\"10.1.0.0/16\", \"192.168.0.0/16\"]\npool = [\"198.18.0.2\"]\n" + ifaces,
			[]string{"5:11: nat.outbound[1].inside[0]: 10.1.0.0/16 is covered by 10.0.0.0/8 of nat.outbound[0] (line 1), which comes first; this rule never applies to it"}},
		{"metrics on every address", "[metrics]\nlisten = \":9300\"\n" + ifaces,
			[]string{`2:10: metrics.listen: ":9300" serves metrics on every address, the outside interfaces included; listen on 127.0.0.1 or a management address, or firewall the port`}},
		{"metrics on 0.0.0.0", "[metrics]\nlisten = \"0.0.0.0:9300\"\n" + ifaces, []string{`2:10: metrics.listen: "0.0.0.0:9300" serves metrics on every address`}},
		{"metrics on localhost", "[metrics]\nlisten = \"127.0.0.1:9300\"\n" + ifaces, nil},
		{"server outside the pool's ports", "[[nat.outbound]]\ninside = [\"10.0.0.0/8\"]\npool = [\"198.18.0.1\"]\nports = \"10000-65535\"\n[[nat.server]]\nprotocol = \"tcp\"\npublic = \"198.18.0.1:21\"\ninside = \"10.0.0.2:21\"\n" + ifaces, nil},
		{"server inside the pool's ports", "[[nat.outbound]]\ninside = [\"10.0.0.0/8\"]\npool = [\"198.18.0.0/29\"]\n[[nat.server]]\nprotocol = \"udp\"\npublic = \"198.18.0.3:5060\"\ninside = \"10.0.0.2:5060\"\n" + ifaces,
			[]string{"6:10: nat.server[0].public: 198.18.0.3:5060/udp lies in the port range 1024-65535 of the pool of nat.outbound[0] (line 1)"}},
		{"blocks leave ports over", detRule + "block_size = 1000\n" + ifaces,
			[]string{"4:14: nat.outbound[0].block_size: ports 65024-65535 are never used: the port range 1024-65535 holds 64 whole blocks of 1000"}},
		{"blocks_per_host above the blocks of an address", detRule + "ports = \"1024-4095\"\nblock_size = 1024\nblocks_per_host = 4\n" + ifaces,
			[]string{"6:19: nat.outbound[0].blocks_per_host: a host's blocks are all on one pool address, which has 3 blocks of 1024 ports; no host gets more than 3"}},
		{"deterministic leaves pool addresses unused", "[[nat.outbound]]\ninside = [\"10.77.0.0/26\"]\npool = [\"198.18.0.204-198.18.0.207\"]\nmapping = \"deterministic\"\nports_per_host = 2000\n" + ifaces,
			[]string{"5:18: nat.outbound[0].ports_per_host: the 64 inside addresses use only the first 2 of the pool's 4 addresses (32 ranges of 2000 ports each)"}},
		{"duplicate ipfix collector", "[[logging.ipfix]]\ncollector = \"192.0.2.10:4739\"\n[[logging.ipfix]]\ncollector = \"192.0.2.10:4739\"\n" + ifaces,
			[]string{"4:13: logging.ipfix[1].collector: 192.0.2.10:4739 is already a collector of logging.ipfix[0] (line 1); it gets every event twice"}},
		{"max_message over a 1500 MTU", "[[logging.ipfix]]\ncollector = \"192.0.2.10:4739\"\nmax_message = 9000\n" + ifaces,
			[]string{"3:15: logging.ipfix[0].max_message: 9000 bytes do not fit a 1500-byte path MTU"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, tc.doc)
			if len(c.Warnings) != len(tc.want) {
				t.Errorf("%d warnings, want %d: %v", len(c.Warnings), len(tc.want), c.Warnings)
			}
			for i, w := range tc.want {
				if i >= len(c.Warnings) {
					break
				}
				e := c.Warnings[i]
				if got := fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg); !strings.HasPrefix(got, w) {
					t.Errorf("warning %d:\n got %s\nwant %s...", i, got, w)
				}
			}
		})
	}
}
