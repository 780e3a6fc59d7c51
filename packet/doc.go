// Package packet gives fastnat zero-copy views over the headers it reads and
// rewrites — Ethernet (with at most one 802.1Q tag), IPv4, TCP, UDP and ICMP —
// and the Internet checksum arithmetic that keeps those headers valid after a
// rewrite.
//
// A header is a named byte slice (type IPv4 []byte) laid over the frame the
// NIC delivered; nothing is copied or decoded into a struct. Accessors are
// one-line binary.BigEndian reads and do not bounds-check beyond what Go does
// itself: validity is established once, by Parse, which checks every length
// the headers claim and records where each header starts in a Parsed. Code
// that holds an OK Parsed may slice the frame at those offsets and use the
// views freely; code that builds a view over unchecked bytes gets a panic on
// a short slice, which is a bug in that code.
//
// Parse is the fast-path gate: it returns a Result (never an error, never a
// panic), allocates nothing and verifies the IPv4 header checksum but not the
// transport checksums, which a NAT only patches. ParseCommon is the same
// gate for the shape nearly all traffic has (untagged, a 20-byte IPv4
// header, not a fragment, TCP or UDP), keeping only the tuple, the lookup
// key: what else the established-flow path reads it reads from the
// headers, where ParseCommon checked them (CommonIPv4, CommonTCP);
// SetCommon turns the tuple and the frame into the Parsed Parse would
// have given, and the TranslateCommon pieces rewrite such a frame without
// a Parsed.
//
// Checksums are never recomputed on the fast path. Setters that change a
// covered field patch the checksum incrementally (RFC 1624, eqn. 3:
// HC' = ~(~HC + ~m + m')), and Delta lets a caller precompute the sum of
// such changes once per session direction and apply it to each packet with
// one addition and a fold (ApplyDelta, ApplyDeltaUDP). Full computations
// (Sum, Checksum, TCPChecksum, UDPChecksum, ICMPChecksum) exist for payload
// rewrites and for tests.
//
// ProtoName and ParseProtoName are the one table of IP protocol names
// fastnat prints (show, events, metrics labels, explain) and reads
// (filters, the explain command): the protocols it handles by name, any
// other by its number.
//
// Addresses are uint32 in host byte order (the value binary.BigEndian.Uint32
// reads from the wire), as in Tuple. The package has no state and no locks;
// views are as safe to share as the bytes under them.
package packet
