// Package config reads fastnat's TOML configuration file into plain,
// validated values.
//
// Parse works in three passes over the document. The first walks
// go-toml's unstable parser AST: it reports syntax errors, records the
// line and column of every key, table header and value under a path such
// as "nat.server[1].public", and checks every key against the schema (the
// raw* structs' toml tags), so that all unknown keys and misplaced tables
// are reported at once. The second decodes the document with go-toml's
// Decoder (DisallowUnknownFields) into those raw structs, whose leaves are
// untyped, which settles the TOML rules the walk does not re-implement,
// such as a key defined twice. The third converts and validates every value
// by hand — types, ranges, enumerations, addresses and prefixes with
// net/netip, durations, cross-references such as a nat server inside an
// outbound pool — collecting every problem as an Error that names
// FILE:LINE:COL, what is wrong and what is allowed, pointing at the value
// (or at the key or table header when the value is missing).
//
// A Config that Parse returns is never modified afterwards, by this package
// or by its users: slices and the compiled port-mapping table are shared
// read-only between goroutines without locking. A reload parses a new
// Config and publishes it whole (an atomic.Pointer swap in the daemon).
package config
