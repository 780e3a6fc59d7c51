// Package control is fastnat's control socket: the protocol `fastnat show`,
// `fastnat reload` and `fastnat explain --live` speak with a running
// daemon, its server and client, the views of sessions, expectations and
// port mappings the daemon answers with, and their text form. CmdExplain
// is answered by a Handler that is also an Explainer (the daemon is).
//
// Protocol. The socket is a unix stream socket. A client connects, writes
// one JSON Request, and reads one JSON Response until the server closes
// the connection; there is no session and no framing beyond that. The
// server handles one connection at a time, so a walk of a large flow table
// for one client never runs beside another's. A failed request carries a
// Code (bad_request, refused, failed) and a message; the client turns it
// into an *Error that matches ErrBadRequest or ErrRefused with errors.Is.
//
// Event streams. The one request that does not end with its Response is
// CmdEvents (`fastnat events`): the Response says {"stream": true} and is
// followed by one JSON Event per line, as the NAT makes them, for as long
// as the client keeps its side of the connection open — closing its write
// side, or the whole connection, ends the stream (so a streaming client,
// unlike Call, must not half-close after its request). Each stream is a
// natlog subscription filtered by the request's EventFilter and runs on a
// goroutine of its own, so the other requests are answered as before
// while streams are open (at most natlog.MaxSubscriptions at once). A
// client that reads too slowly loses events from its own queue; the
// stream then carries an Event of type "lost" with their number. The
// daemon hands the server its event source with ServeEvents.
//
// Permissions. The socket has mode 0600: only its owner, root, may ask for
// sessions or a reload; with an operator group ([control] group,
// ListenGroup) it is 0660 and that group's. It is bound in a private
// directory (mode 0700) beside its path, given its mode and group there
// and renamed into place, so it never exists at its path with other
// permissions, whatever the daemon's umask. Listen removes a stale socket file left by
// a daemon that died, after checking that nothing answers on it; it refuses
// to touch a file that is not a socket or a socket something still listens
// on. Close removes the socket file.
//
// Views. ListSessions walks the flow table with flowtable.Range (slow path,
// no lock) and reads each key with its generation, so a session deleted
// or reused under the walk is skipped rather than shown half old, half new.
// A SessionFilter selects by what the keys say first (address, port,
// protocol, application), then by the rule the session's label names
// (resolved once per label and walk) and its state. ClearSessions walks
// the same way and hands each match, id and generation, to the NAT's
// Delete, which ends it only if it still has that generation. Session,
// Expectation and Event name what they share the same way (protocol,
// inside, outside, rule, app, inbound, start, traffic): one JSON shape
// for every view of a session. Names says what a session's numbers stand
// for: its rule (the NAT resolves labels), its ingress interface, and the
// wall-clock time of the table's clock 0.
// The daemon (package dataplane) implements Handler with these views; this
// package does not know the daemon.
package control
