// Package ipfix exports natlog events as IPFIX (RFC 7011) NAT event
// records (RFC 8158) over UDP, one Exporter per collector.
//
// Templates. Each event type maps to one of seven templates (IDs 256 to
// 262) and an IANA natEvent value: NAT44 session create (4) and delete
// (5, with start and end time, and packetTotalCount and octetTotalCount
// with their RFC 5103 reverse elements for the responder's direction),
// NAT44 BIB create and delete (8, 9: endpoint-independent bindings), NAT
// addresses exhausted (3, natPoolId = the nat.outbound rule's index + 1),
// NAT ports exhausted (12), quota exceeded (13, maximum entries per user)
// and port block allocation and de-allocation (16, 17). Every record starts with
// observationTimeMilliseconds and natEvent. Session tuples are seen from
// the inside host's side (natlog.Event): sourceIPv4Address is the inside
// host, postNATSourceIPv4Address the public address that stood for it.
//
// Transport. UDP only, as RFC 8158 collectors are deployed: the
// templates go out in a message of their own before the first records
// and again every refresh interval (RFC 7011 §8.4: a collector that
// (re)starts learns them within it); there are no template withdrawals
// over UDP. A message holds as many records as fit in MaxMessage bytes,
// several sets if types alternate; the sequence number counts data
// records sent. The socket is unconnected, so a collector that is down
// costs datagrams, not errors on later sends: a failed send is exactly
// that message's records, reported to the Hub as failed.
//
// Why not github.com/vmware/go-ipfix: measured against this package's
// needs (v0.13.0), its buffered exporter encodes a reused record without
// allocating (about 440 ns a record including the send), but its template
// refresh goroutine reads the sequence number that the buffered exporter
// writes, a data race the race detector reports at once; the first
// ECONNREFUSED on its connected UDP socket (a collector restarting) makes
// that goroutine close the connection for good, so export stops silently;
// it logs through klog beside fastnat's slog; and it brings pion/dtls,
// x/crypto, x/net and klog along. The RFC 8158 records fastnat needs are
// seven fixed templates of fixed-length fields, which this package
// encodes directly.
package ipfix
