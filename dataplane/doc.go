// Package dataplane assembles and runs fastnat: it turns a validated
// configuration into the running packet path and serves it to operators.
// Package main only parses flags and calls it; tests construct, reload and
// close a Dataplane directly.
//
// A Dataplane is the packet path: the flow table, the NAT and its rules,
// the FTP ALG and its goroutine, one afxdp.Interface per configured
// interface with its XDP program, the public addresses on the outside
// interfaces, and one pipeline.Worker per queue on a locked OS thread. New
// builds it in named steps, in the order afxdp's lifetime rules demand
// (load the interfaces, set their filters, open every worker's sockets,
// start the goroutines, attach the programs last, so that no packet finds
// a queue without a socket); a step that fails tears down what the earlier
// ones built. Close detaches first, so that traffic falls back to the
// kernel, then stops the workers and frees everything. Reload applies a
// new configuration to new sessions, all or nothing: it prepares
// everything first (rules compiled, public addresses diffed, the XDP
// filter checked against every interface) and then commits in steps that
// undo themselves if a later one fails; keys that size what New built
// (restartKeys) keep their running values and are reported as pending.
// Existing sessions keep the translation they were created with. Alive
// tells whether every worker's loop still runs (the watchdog's question).
//
// A Daemon is a Dataplane as `fastnat run` serves it: with its
// configuration file (re-read on Reload, serialised so that SIGHUP and
// `fastnat reload` never interleave), the control socket (it implements
// control.Handler), the Prometheus endpoint, the drop capture, and
// systemd's notifications and watchdog (internal/sdnotify).
//
// New, Reload and Close are control-plane calls: New works in the network
// namespace of the calling OS thread (afxdp's rule), and everything it
// opens keeps that namespace, so a Reload may come from any goroutine.
// Stats, the views and Clear (`fastnat clear sessions`: the NAT's Delete
// of every session a filter selects) are safe to call concurrently with
// the workers. The NAT records its events into the event log's rings
// (nat.Producers of them: one per worker, one for Clear, one for the FTP
// ALG).
package dataplane
