// Package explain answers the question the operator in the case could not
// ask: how does fastnat treat this connection, and why? Given the first
// packet of a connection (protocol, source, destination) and a
// configuration, Explain reports the NAT rule that translates it and the
// translated tuple, the application its ports classify it as — by which
// port-mapping entry or built-in default, on the port as it arrives or
// after translation (CASE.md's rule) — whether the FTP ALG inspects it,
// and, when no mapping makes an unclassified TCP connection ftp, the
// [[port_mapping]] that would.
//
// It reads only the configuration and nat's side-effect-free
// nat.Explain, so `fastnat explain -c FILE` works without root and
// without a running daemon. The daemon answers the same query over its
// control socket (control.ExplainResult) and adds what only it knows: the
// live session, its expectations and the ALG's counters for it.
package explain
