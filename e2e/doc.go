// Package e2e holds fastnat's end-to-end tests: real programs (vsftpd,
// curl, lftp, traceroute, tracepath, ping, iperf3, nmap, hping3) in
// network namespaces built by internal/testnet, talking through a router
// namespace that runs either fastnat or, as the baseline and the proof
// that the harness reproduces the case, the Linux kernel's own NAT. The
// tests need root and the Debian packages vsftpd, lftp, curl, iproute2,
// nftables, ethtool and procps (the router tests also traceroute,
// iputils-tracepath, iputils-ping, iperf3, nmap, conntrack and hping3);
// without them they skip, saying what is missing. Every transfer is
// checked by sha256 and must succeed on the first try.
package e2e
