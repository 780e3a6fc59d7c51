// Package flowtable is fastnat's session table, shared by all workers: a
// session is found by either of its two keys — the tuple of its first
// packet (Key[Orig]) and the tuple its replies arrive with (Key[Reply]) —
// and the hit tells which direction the packet travels. A session holds
// the translation nat precomputed (checksum deltas; the translated tuples
// are the reverses of the keys), the application, nat's protocol state,
// timeout and per-direction tracking words (TCP), the last-seen time,
// per-direction packet and byte counters, and its parent session (id and
// generation) for ALG data connections. A Session is the plain value
// Insert takes and the readers copy out; the table's own storage is never
// handed out. Beside the sessions the table keeps expectations: single-use entries with a wildcard source port
// (and optionally address) that an ALG inserts for a data connection it
// saw negotiated.
//
// # Layout
//
// All storage is allocated by New and never grows. Sessions live in one
// array of exactly MaxSessions pointer-free 120-byte entries addressed by
// uint32 id, so the garbage collector never scans it; free slots form
// per-shard free lists linked through the slots themselves. The index
// maps a key to id<<1|dir. Keys are hashed with XXH64 under a random
// per-table seed (hash2; a hash-flooder cannot aim at buckets it cannot
// compute). The top hash bits choose one of a power-of-two number of
// shards, the next bits a home bucket in the shard. A bucket is one
// 64-byte cache line with 12 lanes: 8-bit tags (more hash bits) in two
// words and 12 entry words, plus an overflow count; lanes are filled by
// linear probing across buckets. Index entries hold no key: a lookup
// compares tags in a bucket with a few word operations and then the key
// words of the session an entry points to, so a hit usually costs two
// cache lines (bucket and session). The index is sized for 85% of its
// lanes at full capacity, about 13 bytes per session for both entries; with
// the session and the expectation store a table costs about 126 bytes per
// session (the bench package measures it).
//
// # Concurrency
//
// Lookups take no lock and write nothing shared. Writers — Insert, Delete,
// Expire — lock the shards of the session's two keys (in shard order),
// and a leaf lock per free list. A reader trusts nothing it loads from the
// index: every word it reads concurrently with a writer is accessed
// atomically, and it confirms a candidate against the session's own copy
// of the key under a per-session seqlock. The key's ports and protocol are
// mirrored, with a 24-bit generation in spare bits, in one atomic word per
// direction; the generation is odd while the session lives and is bumped
// when it is deleted and again when the slot is reused. The reader loads
// that word, the addresses' word, and the word again, and accepts the
// session only if the word is unchanged, live and matches — so it never
// returns a session whose key differs from the one it looked up, and never
// sees a half-written one (Insert writes everything and publishes the
// generation last, then adds the index entries). Index entries never move:
// a delete clears its lane and lowers the overflow counts of the buckets
// its insert passed, so a lookup cannot miss a key that stays in the table
// while it runs. Counters are per shard and written only by writers.
//
// # Rule for readers
//
// A session id is only a slot number: after a lookup returns, the session
// may be deleted (Delete, or Expire on another worker) and its slot reused
// for a new session. A session is therefore always named by its id and
// its generation — as LookupGen, LookupBatch's Hit and Insert return them
// — and read only through calls that copy and then validate, as a seqlock
// reader does: they load what the caller needs with atomic loads, then
// load the generation word, and report false if the slot no longer holds
// that generation, in which case the copy is discarded and the packet is
// a miss. Validating first and reading after is wrong: the slot may be
// reused between the two. The readers are:
//
//   - Hot, for the per-packet path: one direction's rewrite (translated
//     tuple, checksum deltas) and the flags, three words that the
//     storage keeps side by side, returned in registers (Hot inlines);
//     HotTCP adds the protocol state and both tracking words;
//   - Read, for the slow path: the whole Session (keys, deltas, parent,
//     application, mapping entry);
//   - Range, which walks live sessions and hands each out as a validated
//     copy with its id and generation;
//   - Key, one key with the generation it belongs to.
//
// State, Counters and LastSeen are single atomic loads; a caller checks
// Valid after reading them. Writers that name a session take its
// generation too (DeleteGen, SetState), and every reference a caller
// stores — a fragment's session, an expectation's parent, a data
// session's parent — keeps the generation beside the id, so that a
// reused slot never passes for the session it once held. The only raw
// view is the copy Expire hands to onExpire: the session is unlinked and
// dead but its slot not yet free, so nothing rewrites what Insert stored.
// Sessions are reclaimed only after idling for their timeout, so in the
// pipeline a validation fails only for a packet that raced its session's
// expiry and a new session's insert. Every word a reader may load while a
// writer reuses the slot is accessed atomically on both sides, so the
// race detector stays quiet for every reader above.
//
// # Aging and capacity
//
// Expire is called by every worker with a small budget; worker w of n owns
// a fixed slice of the session array and walks it with a cursor, so the
// table is never swept at once and workers never contend. Expired
// sessions are unlinked, reported to the caller's onExpire (nat returns
// their ports to the pool) and only then recycled. When no slot is free,
// Insert returns ErrFull and counts it; nothing already in the table is
// evicted.
package flowtable
