// Package portmap decides which application a new connection belongs to,
// with the semantics of H3C Comware's `port-mapping application NAME port
// PORT [protocol PROTO]` plus an optional scope of destination prefixes.
//
// Every known application starts mapped to its well-known port (ftp 21/tcp,
// dns 53/udp and tcp, ...). User mappings add to those defaults and are
// always consulted first: any user mapping that matches a packet, whatever
// its scope or protocol, beats a built-in default on the same port, so
// `application http port 21` makes port 21 http while ftp keeps every other
// port mapped to it. Among user mappings the most specific scope wins (a
// single host, then longer prefixes, then an unscoped mapping); within one
// scope a mapping that names the packet's protocol beats one without a
// protocol. Two mappings with the same port, protocol and scope are one
// entry: the later one in the list overwrites the earlier (Build reports
// each overwrite so `fastnat check` can warn about it).
//
// A new connection is classified by its destination port as it arrives and,
// only if that maps to nothing, by its destination after translation
// (Table.Classify): with a nat server from public:9091 to inside:21 the
// connection is ftp without any mapping, while public:9091 to inside:2021
// needs a mapping for 9091 or 2021.
//
// A Table is built once per configuration and never changes afterwards, so
// any number of goroutines may call Lookup and Classify without locking.
// Lookup is allocation-free: a flat per-port index (one entry per possible
// port) leads to the port's scope levels in precedence order; a level with a
// single prefix is compared directly, a level with many (a thousand hosts on
// one port) is probed in an open-addressing hash table. The cost is one load
// for an unmapped port and a few loads per scope level present on a mapped
// port, independent of the number of mappings.
package portmap
