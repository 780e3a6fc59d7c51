// Package testnet builds throw-away networks of Linux network namespaces
// for fastnat's end-to-end tests, `fastnat bench veth` and `fastnat demo`,
// and runs real programs in them: vsftpd, curl, lftp, the kernel's own NAT.
//
// A Topology is three namespaces (four with Options.InsideHost) joined by
// veth pairs; the names get a random suffix per run ("fnt-1a2b3c-rtr"),
// so parallel runs never collide, and Close removes all of it:
//
//	  client ns                 router ns                    server ns
//	 fnt-ID-cli                fnt-ID-rtr                   fnt-ID-srv
//	+-------------+         +-------------------+         +--------------+
//	| eth0        |  veth   | outside    inside |  veth   | eth0         |
//	| 198.18.0.1  |---------| .254       10.77. |---------| 10.77.0.226  |
//	| default via |         | +.204      0.1    |         | default via  |
//	| .254        |         | fastnat or kernel |         | 10.77.0.1    |
//	+-------------+         +-------------------+         +--------------+
//	  outside 198.18.0.0/24   public 198.18.0.204          inside 10.77.0.0/24
//
//	With InsideHost the server's eth0 becomes a port of bridge br0, which
//	holds 10.77.0.226, and a fourth namespace joins the inside segment:
//
//	  server ns fnt-ID-srv                       host ns fnt-ID-hst
//	  eth0 --+-- br0 10.77.0.226 --+-- hostport ----- eth0 10.77.0.5
//	                                                  default via 10.77.0.1
//
// The router's veths ("outside", "inside") are the ones fastnat reads; both
// ends of them get Options.Queues rx/tx queues. Every veth has tx checksum
// offload turned off (see New for why), IPv6 is disabled everywhere so no
// neighbour discovery chatter reaches the links, and ip_forward in the
// router is off unless asked for: with fastnat as the router only fastnat
// can carry traffic.
//
// The addressing plan is fixed (ClientAddr, PublicAddr, ServerAddr, ...);
// only namespace names vary, and the Topology struct carries them.
//
// Programs run inside a namespace through `ip netns exec` (Run, Start,
// Topology.Start), each in its own process group so a timeout kills its
// children too. Go code enters a namespace with Do, which runs a function
// on a locked OS thread that is thrown away afterwards; sockets created
// there stay in the namespace (ListenUDP, DialTCP, Ping, StartUDPEcho).
//
// Every namespace gets a resolv.conf of its own (/etc/netns/NAME, which
// ip netns exec binds over /etc/resolv.conf) naming a name server on its
// loopback: a program's name lookups fail at once instead of leaving the
// topology for the machine's name server, which no route reaches.
//
// StartFTPServer runs vsftpd, proftpd, pure-ftpd or pyftpdlib (Daemon;
// anonymous, read-only but for an upload directory when asked, passive
// and active mode, protocol log kept where the server keeps one); Fetch
// drives curl, lftp, wget, tnftp, ncftp, Python's ftplib or busybox in
// one of the four data-connection modes the client can use, downloading
// or uploading, with no retries, and checks from the client's own
// transcript that the mode was really used. StartSTUNServer and
// StartClassicSTUNServer run coturn's turnserver (RFC 5780) and stund
// (RFC 3489) on two addresses; NATDiscovery and RunClassicSTUN run their
// clients and parse what they conclude about the NAT. StartCapture and
// SendFrames are AF_PACKET helpers: a capture shows what went over a link
// for gopacket to check, and MalformedFrames makes bursts of broken
// frames, one defect each.
//
// KernelNAT turns the router into the Linux kernel's NAT with nftables
// and conntrack, including the FTP helper on a chosen port: the baseline
// the benchmark compares fastnat with, and the proof that the harness
// reproduces the case (no helper on 9091: the first passive transfer
// fails) and its fix.
//
// Lifetime: everything a Topology starts or creates belongs to it and ends
// with Close (MustNew registers Close with t.Cleanup). Processes started
// with the package-level Start belong to the caller. The package needs
// root and the Debian packages iproute2, ethtool, procps, nftables,
// vsftpd, curl and lftp; the FTP matrix and the STUN tests need more
// (scripts/setup.sh installs them all, and unpacks proftpd and pure-ftpd,
// which Debian will not install beside vsftpd, under /opt/fastnat-test);
// CheckTools tells which are missing.
package testnet
