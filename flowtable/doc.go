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
// handed out. Beside the sessions the table keeps expectations:
// single-use entries with a wildcard source port
// (and optionally address) that an ALG inserts for a data connection it
// saw negotiated.
//
// # Layout
//
// All storage is allocated by New and never grows. A session slot is
// addressed by uint32 id and split in two pointer-free arrays of exactly
// MaxSessions entries, both 64-byte aligned:
//
//   - hot, one 64-byte cache line a session: everything the
//     established-flow path reads and writes — both keys' address and
//     port words, the meta word (the first packet's checksum deltas
//     folded to 16 bits, the generation, the protocol; a reply's deltas
//     are their negation), both TCP tracking words, the last-seen time,
//     state, hot flags and timeout, and per direction a 32-bit counter
//     word (packets and bytes not yet spilled). A hit touches this line
//     and its index bucket, nothing else;
//   - cold, 56 bytes a session: the spilled per-direction packet and
//     byte counters, parent (id and generation), start time, rule and
//     ingress labels, application, mapping entry and the other flags —
//     what Read, Range and the slow paths need.
//
// Free slots form per-shard FIFO free lists linked through cold.parent,
// each slot tagged (in cold.pkts[0]) with the grace token it waits for.
// The index maps a key to id<<1|dir. Keys are hashed under a random
// per-table seed by a multiply-mix (hash2, in the manner of wyhash and of
// the Go runtime's map hash without AES): the key's two words, each
// masked with seed bits, are multiplied into a 128-bit product whose
// halves are multiplied again and folded — two multiplies where XXH64
// took ten, half the hashing time of a batched lookup. The seed is what
// keeps a hash flood off the index: keys arrive from the network, and a
// sender who could compute buckets could aim every flow at one bucket
// and turn each lookup into a long probe. Without the seed an attacker
// can neither predict which keys share a bucket nor make a factor of the
// product zero; a CRC (cheaper still with the SSE4.2 instruction) would
// not do, because it is linear: keys that collide under one seed collide
// under all. The top hash bits choose one of a power-of-two number
// of shards, the next bits a home bucket in the shard. A bucket is one
// 64-byte cache line with 12 lanes: 8-bit tags (more hash bits) in two
// words and 12 entry words, plus an overflow count; lanes are filled by
// linear probing across buckets. Index entries hold no key: a lookup
// compares tags in a bucket with a few word operations and then the key
// words in the hot line an entry points to, so a hit costs two cache
// lines (bucket and hot line). The index is sized for 75% of its lanes at
// full capacity, about 15 bytes per session for both entries (16 at 1M
// sessions, 14.5 at 10M); with the hot and cold lines and the expectation
// store a table costs about 136 bytes per session (Memory reports it by part; `fastnat bench pipeline`
// prints it beside the NAT's own share).
//
// The hot, cold and index arrays are mapped outside the Go heap
// (internal/hugepage: mmap aligned to 2 MiB with MADV_HUGEPAGE, ordinary
// pages where transparent huge pages are off), so that a random lookup in
// a table of a gigabyte is not also a TLB miss per line, and populated
// there and then, so that the first sessions' inserts do not fault the
// pages in; Close unmaps them.
//
// Inserting is a creation's last step, and its misses — the reply key's
// bucket, the new slot's hot line and cold entry — need not wait for it:
// PrefetchKey starts loading a key's home bucket, and PrefetchInsert the
// lines of the slot the key's shard will most likely hand out (each
// shard's free list keeps that hint, written under its lock and loaded
// without it), so that a creation starts them as soon as it knows the
// keys. Both take a key's hash (Hash), and InsertHashed takes the two
// keys', so a creation hashes each key once; under the shard locks an
// insert walks each key's probe sequence once, proving the key absent
// and finding its lane in the same pass (probe, then place).
//
// # Batched lookups
//
// LookupBatch, the pipeline's path, runs a chunk of up to 64 keys as a
// prefetch pipeline: hash every key and prefetch its home bucket; read
// every bucket and prefetch the hot lines of the (at most two) entries
// whose tags match — a branch-free tag match over both control words —
// and, for a key whose home holds no tag of it but overflowed, the next
// two buckets; read those in a second round and prefetch the hot lines
// they name; then confirm each key from cache (the keys a confirmation
// leaves open take the whole lookup after the chunk's loop, and the
// hashing is a call of its own per chunk: inlined, its multiplies' fixed
// registers made the compiler shuffle the loop's values on every key). A
// key whose home neither matches nor overflowed is absent without
// another look. The prefetches
// are real prefetch instructions (small assembly stubs, PREFETCHT0 on
// amd64 and PRFM on arm64, a plain loop elsewhere), which retire at once
// where a load would hold up the ones behind it, so a chunk's misses are
// all in flight together. Two software-pipelined schedules — groups of
// 8 keys a step apart (hash group g+2, read the buckets of g+1, confirm
// g), and one key at a time at distances of 4 to 16 with a prefetch per
// key — measured 7-18 % slower than the chunk on the development machine
// (a 2-vCPU KVM guest): an assembly call cannot inline, a Go call spills
// every live register, and the chunk's one call per 64 lines is cheaper
// than the overlap is worth. The memory system sets most of the cost
// at 10M sessions there: a batched lookup takes about 45 ns a key over a
// table that fits the caches (the benchmark's key generation included),
// 64 at 1M and 116 at 10M; the chunk's 64 bucket prefetches alone take
// about 18 ns a key to issue at 10M, and a random read costs more the
// larger the array, though all of it is on huge pages in the guest — 14
// ns with 16 in flight in 128 MiB, 27-30 in the 768 MiB a 10M lookup
// reads from, 46-60 in 1.28 GiB — as TLB misses under nested paging do
// when the host backs the guest with small pages. Fusing lookup with
// translation — the steps cut apart so that pipeline.Worker translated
// chunk c while chunks c+1 and c+2 loaded (chunks of 16, two chunks
// ahead), in two schedules — measured no faster than one LookupBatch per
// burst on the same machine, so the pipeline looks a whole burst up
// first.
//
// What is left above the memory system: BenchmarkLookupFloor runs LookupBatch
// alternated with its own memory pattern and nothing else (hash, prefetch
// the bucket, read one entry, prefetch and read its hot line). Over a
// full 10M table the pattern costs 50-68 ns a key on the development
// machine, LookupBatch 85-95 (at 1000 sessions, in cache, 11 against
// 28): the tag match, the confirmation, the second round and the
// compares that the pattern skips are not hidden behind the misses,
// since the core cannot run ahead of a phase's loads by more than a few
// keys' instructions. Two more schedules measured no faster there:
// prefetching in groups of 8 keys (a call per group, 10-15 % slower) and
// two halves of a chunk interleaved (one half's hashing and bucket
// reading while the other's lines load, 4-7 % slower); nor did issuing
// the second round's bucket prefetches as soon as the first round finds
// the key late, or confirming the first round's keys before reading the
// second round's buckets. So the goal of 40 ns a key at 10M sessions
// lies below what two random lines a key cost on that machine; on the
// later, faster host of the figures below, the same LookupBatch takes
// 37-41 ns a key at 10M (the README's goals table).
//
// A lookup that ends at the bucket was built and measured (branch
// oneline-wip): LookupCandidates hashed, read the home bucket and
// returned the entry of the key's first matching tag unconfirmed, its
// hot line prefetched, and Resolve confirmed it from the hot line (the
// same seqlock read, or the whole lookup when the candidate was not the
// key) just before the packet was translated. The index needs no change
// for that: the 8-bit tag already leaves a wrong first candidate to 1.7 %
// of hits and 3.4 % of misses of a full table, and an entry holding the
// whole key (13 bytes; 20 with the id and the generation the caller
// needs to validate, three entries a line) would take about 57 bytes a
// session where the index takes 15, without sparing a hit its hot line,
// which translation reads anyway; an absent key already costs one line.
// Alternated in one process (BenchmarkLookupFloor, four runs of 300
// blocks, on a later and faster host than the figures above),
// the candidates took 0.78-0.83 of LookupBatch's time at 10M (30 against
// 37 ns a key) and 0.73-0.76 at 1M, but the candidates with Resolve right
// after them 1.09-1.12 and 1.08-1.13: with all 64 lines in flight the hot
// line's round costs LookupBatch only 6-8 ns a key, the bucket's round
// the rest. In the pipeline the miss moved to the translation loop, which
// waits on each line with fewer loads in flight than the confirm loop,
// and the confirmation became a call a packet: alternated in one process,
// the pipeline's worker was no faster at 65,536 flows and 2 % slower at 1
// flow and 6 % at 1M (see the README's "The flow table"), so LookupBatch
// confirms, as before. A hit costs two dependent lines whatever the index
// holds, as long as the translation lives in the session's hot line: only
// an index whose entries are the translation (a line per key, found by
// the key's hash) would make it one.
//
// # Concurrency
//
// Lookups take no lock and write nothing shared. Writers — Insert, Delete,
// Expire — lock the shards of the session's two keys (in shard order),
// and a leaf lock per free list. A reader trusts nothing it loads from the
// index: every word it reads concurrently with a writer is accessed
// atomically, and it confirms a candidate against the hot line's own copy
// of the key under a per-session seqlock. The meta word holds a 24-bit
// generation; the generation is odd while the session lives and is bumped
// when it is deleted and again when the slot is reused. The reader loads
// the key words and then meta, and accepts the session only if meta is
// live, of the generation it expects and the key matches — so it never
// returns a session whose key differs from the one it looked up, and never
// sees a half-written one (Insert fills the slot with plain stores and
// publishes meta last with one atomic store, then adds the index
// entries). Index entries never move: a delete clears its lane and lowers
// the overflow counts of the buckets its insert passed, so a lookup
// cannot miss a key that stays in the table while it runs. Shard counters
// are written only by writers.
//
// The per-packet writes — Touch (last-seen time and counters), SetState,
// SetTrack — are plain stores into the hot line, no locked instruction:
// a worker makes them only for a session it validated in its current
// poll. Grace periods (qsbr.go, as DPDK's RCU QSBR) make that safe: a
// worker brackets every poll with Enter and Leave (one locked store per
// poll), and a freed slot is reused only once every worker that was
// inside a poll when it was freed has left it, so a store never lands on
// the slot's next session. A goroutine that is not a worker and stores
// into a session (SetState from the ALG's) brackets the check and the
// store with EnterAside and LeaveAside, a reader slot of its own. Under
// the race detector the same stores are atomic (relaxed_race.go), so
// that the detector checks the protocol.
//
// # Exact counters without locked adds
//
// Each direction's counter word holds packets (10 bits) and bytes (22
// bits) not yet added to the cold counters; Touch adds to it with a
// plain store, and once in about a thousand packets (or 4 MiB) spills it
// into the cold 64-bit counters with atomic adds, the word marked as
// spilling meanwhile. The per-packet path calls TryTouch, the common half
// alone, which inlines, and Touch only when TryTouch reports the word
// full. Counters reads the cold counters, the word, and the
// cold counters again, and retries if they moved or the word was
// mid-spill: `show sessions` and the event log see every packet counted
// so far, exactly. A direction's word is written by that direction's
// packets, which one queue (one worker) receives; two workers counting
// one direction at the same instant could lose one update.
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
//     tuple, checksum deltas) and the flags, four loads from the hot
//     line returned in registers (Hot inlines);
//     HotTCP adds the protocol state and both tracking words (the
//     per-packet path takes Hot, Hot.State and Track instead, which
//     inline: a worker reads the tracking words after Hot validated the
//     session, which the grace periods keep from being reused until its
//     poll ends);
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
