// Package syslog exports natlog events as RFC 5424 syslog messages, one
// structured line per event, over UDP (RFC 5426), TCP with octet-counting
// framing (RFC 6587 §3.4.1) or a local datagram socket such as /dev/log.
//
// A message is
//
//	<134>1 2025-12-03T09:18:26.295Z nat1 fastnat 4242 session-create [nat@32473 rule="nat.outbound[0]" proto="tcp" src="10.77.0.5" sport="40000" dst="198.51.100.1" dport="80" xsrc="198.18.0.204" xsport="40123" xdst="198.51.100.1" xdport="80" app="http"] session-create tcp 10.77.0.5:40000 -> ...
//
// with the event type as MSGID, every field of the event as an SD-PARAM
// of the SD-ID nat@32473 (32473 is RFC 5612's documentation enterprise
// number; names without "@" belong to IANA), and natlog's one-line text
// as MSG. The timestamp is the event's, in UTC with milliseconds. Session
// events and bindings are informational (severity 6), exhaustion and
// quota events warnings (4); the facility is configured (local0 by
// default). Tuples follow natlog.Event: src is the inside host, xsrc the
// public address that stood for it.
//
// Delivery. UDP uses an unconnected socket and never blocks; TCP writes a
// batch at a time with a deadline, and after a failure drops the
// connection and reconnects with a back-off of 1 s doubling to 30 s,
// counting the messages it could not write as failed; the local socket
// reconnects on the next message. The Hub runs each Exporter on a
// goroutine of its own, so a stalled receiver delays nobody else.
package syslog
