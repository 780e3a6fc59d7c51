// Package nat is fastnat's translation engine: the rules (nat server, nat
// outbound), port allocation, session creation, the per-packet rewrite, TCP
// state for timeouts, ICMP query and error translation, and IPv4 fragments.
//
// TCP state follows sequence numbers the way Linux conntrack does (see
// tcpStep): each direction's highest sequence end and largest window,
// kept in the session's two tracking words, bound the receiver's window,
// and a RST or FIN moves the state only inside it (RFC 5961 §3). What
// falls outside is dropped and counted (DropTCPOutOfWindow), so a forger
// off the path cannot end a connection, nor send data or ACKs beyond the
// window through it; a segment acknowledging data the other side has not
// sent is dropped too (DropTCPAckWindow), as are segments whose flags no
// stack sends (DropTCPBadFlags). A SYN on a connection that is over
// (tcpOver) misses, and create ends the old session (reclaim) to make the
// new connection a session of its own, as conntrack replaces a TIME_WAIT
// entry: what is kept by session — the ALG's stream above all — never
// carries over from one connection to the next on the same tuple. A SYN
// on a connection believed live passes unchanged but is remembered
// (ignoredSYNs): a SYN/ACK acknowledging it shows that the endpoints both
// closed a connection whose end fastnat missed, and tracking starts again
// from that handshake, as conntrack's last_end allows.
//
// Design. A session is created once, on the slow path, when the first packet
// of a flow misses the flow table: the rules decide the translated tuple, the
// port allocator hands out a public port, portmap labels the application,
// and both rewrites (Orig and Reply direction) are precomputed as checksum
// deltas and stored in the flowtable.Session together with the two keys. The
// per-packet fast path then needs no rule lookup at all: the new addresses
// and ports of a packet in direction d are those of Key[1-d] reversed, and
// the IPv4 and transport checksums are fixed by adding the stored deltas
// (RFC 1624) — a few stores and two additions.
//
// Reading sessions. Another worker may expire a session and reuse its slot
// at any moment, so nat never reads a session through a pointer: the fast
// path copies what it needs with flowtable.Table.Hot (translated tuple,
// deltas, flags, state), which validates the generation after the copy,
// and treats a failed copy as a miss. A session is always named by id and
// generation: Result carries both, and every reference nat keeps past a
// packet — a fragment entry, an expectation's parent, a port claimed for
// an expectation, the control session ExpectData is called for — stores
// the generation with the id and reads through the validated calls
// (Hot, Read), so a reused slot never passes for the session it held.
// OnSessionEnd reports the generation of the ending session too.
//
// Ownership. A NAT value holds what all workers share: the compiled rules
// (swapped atomically on reload), the port pools (lock-free bitmaps), the
// endpoint-independent mapping bindings and the public-endpoint map
// (endpoint maps, epmap.go: sharded, locked, flat, sized up front from
// the flow table's capacity; slow path only).
// Each worker has its own Engine holding what only it touches: its fragment
// table, its random source for port selection, its counters. Engines are not
// safe for concurrent use; the NAT is.
//
// Creation. A session's creation waits mostly for memory: the binding's
// and the public endpoint's slots, the port bitmap's word, the new
// slot's lines and the reply key's index bucket are each a miss in a
// large table. So create starts loading each as soon as it knows where
// it is (prefetch: the binding's slot and the new slot's lines before
// the checks and the rules, the reply key's bucket as soon as the port
// is chosen) or can guess it: for a claim from a dynamic pool, the
// bitmap words and the public map's slots of the preserved port and of
// the random start, drawn ahead for the allocation, load with the
// binding's slot (prefetchClaim). Each key and binding is hashed
// once, by its prefetch, and the hash handed on (the keys' from
// flowtable.Table.Hash to InsertHashed); the public endpoint's entry is
// hashed again by the add, a few instructions that spare the Engine a
// hash carried from snat to insert. Insert adds a new
// binding's public endpoint just before the session is published,
// outside the binding's lock: nothing can release the binding before
// then, since the creation holds a reference. Creating a session
// allocates nothing.
//
// Allocation modes. Besides the dynamic pools, blocks.go holds the port
// block allocator (a host's ports come from whole blocks on one address,
// one event per block) and deterministic.go the RFC 7422 mapping (every
// inside address has a computed public address and port range; Lookup
// inverts it offline). Session creation claims through the outbound
// rule's mode (claim), inside endpoint-independent bindings too; the FTP
// ALG's data ports claim in the announcing host's block or range
// (claimFor); every port goes back through releasePort. A host at its
// blocks' or range's end gets DropQuotaExceeded.
//
// Events. The NAT records what it decides — sessions created and ended,
// bindings, port blocks, exhaustion — into natlog rings (LogTo): each
// Engine into its worker's, Delete and ExpectData into rings of their own
// behind a mutex, so that every ring has one producer. Events are made on
// the slow path only (creation, release), at the poll's time (SetTime);
// the ones a refused packet can repeat pass a per-producer throttle.
//
// Rules and sessions. A session records the rule that made it as a label
// (label.go): how (directly, hairpin, ALG) and the id of the rule's
// identity, which the NAT keeps across reloads, so that Rule names it at
// its current index, or as removed. Delete ends a session on demand
// (`clear sessions`) through the release that expiry runs, exactly once.
//
// Filtering. Unsolicited traffic from outside — no session, no expectation,
// no nat server rule — is dropped and counted (address-and-port-dependent
// filtering, RFC 4787 REQ-8's secure choice); nothing crosses the NAT
// untranslated. Of those, UDP and TCP SYNs to a port of a public address
// that nothing holds are to a closed port (ClosedPort), and the pipeline
// answers them as a host would: port unreachable, a reset.
//
// Hairpinning. A new flow from inside to a public endpoint of the NAT
// (RFC 4787 REQ-9, RFC 5382 REQ-8) goes to the inside endpoint mapped to
// it — a nat server's, an endpoint-independent binding's, or an
// address-and-port-dependent session's own port, found in a reverse map
// kept where those mappings begin and end — with its source translated to
// the sender's own public mapping, never its private address. A
// hairpinned packet passes the target mapping's filtering exactly as a
// packet from outside with the sender's public mapping as its source:
// refused (DropHairpinFiltered) until the target has sent to that
// endpoint. To an endpoint-independent binding the session is made on the
// refused packet all the same, held (flagHeld): its Orig direction is
// refused until the target's first packet has passed the other way, which
// the sender's mapping admits — hole punching's order. A per-session port
// admits only its session's remote, and nothing is made. The session is
// an ordinary one (both keys, both directions, released once) — except a
// flow from an inside endpoint to its own endpoint-independent mapping,
// whose two keys would be one: its packets are reflected one by one,
// without a session (reflect). A nat server filters nothing. ICMP queries
// are not hairpinned (an identifier names no inside host; RFC 5508 §3.5
// asks it of Basic NAT only): an echo request to a public address is
// answered by the NAT.
//
// Protocols without ports (GRE, ESP and the others AddrOnly admits) are
// translated by address alone, as conntrack's generic tracker does: an
// outbound rule's first packet makes an address-only session — keys with
// ports 0, the host's paired pool address as its source, no port claimed
// and nothing in the endpoint maps, so releasing it gives nothing back —
// whose reply key, remote to public address, is its uniqueness: a second
// host to the same remote takes the rule's next pool address or is
// dropped as ports exhausted (createAddrOnly). Translate rewrites only the
// IPv4 header of a protocol it does not know.
package nat
