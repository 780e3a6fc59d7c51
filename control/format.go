package control

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/metrics"
)

// seconds writes a count of seconds as the configuration file writes a
// duration ("2h4m", not "2h4m0s"), so a session's timeout reads as the
// [timeouts] value it came from.
func seconds(s int64) string { return config.FormatDuration(time.Duration(s) * time.Second) }

// WriteSessions writes the sessions one per line under a header, as
// `conntrack -L` does — the initiator's and the responder's tuples, the
// state without its protocol, the application, the rule, the interface
// the first packet came in on, the age and the time left — then the
// count.
func WriteSessions(w io.Writer, l SessionList) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(l.Sessions) > 0 {
		fmt.Fprintln(tw, "ID\tPROTO\tSTATE\tINITIATOR\tRESPONDER\tAPP\tRULE\tIN\tAGE\tTTL")
	}
	for _, s := range l.Sessions {
		state := s.State
		if _, rest, ok := strings.Cut(state, "_"); ok {
			state = rest
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s->%s\t%s->%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Protocol, state,
			s.Initiator.Src, s.Initiator.Dst, s.Responder.Src, s.Responder.Dst, s.App, dash(s.Rule), s.Ingress,
			seconds(s.Age), seconds(s.TTL))
	}
	tw.Flush()
	writeTotal(w, l)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// writeTotal writes how many sessions matched and how many were shown.
func writeTotal(w io.Writer, l SessionList) {
	fmt.Fprintf(w, "Total sessions found: %d", l.Matched)
	if n := len(l.Sessions); n < l.Matched {
		fmt.Fprintf(w, " (%d shown; raise --limit to see more)", n)
	}
	fmt.Fprintln(w)
}

// WriteSessionsVerbose writes one block per session in the layout of the
// case's firewall (Comware's `display session table verbose`), then the
// count.
func WriteSessionsVerbose(w io.Writer, l SessionList) {
	for _, s := range l.Sessions {
		proto := fmt.Sprintf("%s(%d)", strings.ToUpper(s.Protocol), s.ProtoNum)
		fmt.Fprintf(w, "Initiator:\n  Source IP/port: %s/%d\n  Destination IP/port: %s/%d\n  Protocol: %s\n  Inbound interface: %s\n",
			s.Initiator.Src.Addr(), s.Initiator.Src.Port(), s.Initiator.Dst.Addr(), s.Initiator.Dst.Port(), proto, s.Ingress)
		fmt.Fprintf(w, "Responder:\n  Source IP/port: %s/%d\n  Destination IP/port: %s/%d\n  Protocol: %s\n",
			s.Responder.Src.Addr(), s.Responder.Src.Port(), s.Responder.Dst.Addr(), s.Responder.Dst.Port(), proto)
		fmt.Fprintf(w, "State: %s\nApplication: %s\nRule: %s\n", s.State, strings.ToUpper(s.App), dash(s.Rule))
		fmt.Fprintf(w, "Start time: %s  TTL: %s\n", s.Start.Format("2006-01-02 15:04:05"), seconds(s.TTL))
		fmt.Fprintf(w, "Idle: %s  Timeout: %s\n", seconds(s.Idle), seconds(int64(s.Timeout)))
		fmt.Fprintf(w, "Initiator->Responder: %d packets %d bytes\n", s.Traffic.Initiator.Packets, s.Traffic.Initiator.Bytes)
		fmt.Fprintf(w, "Responder->Initiator: %d packets %d bytes\n", s.Traffic.Responder.Packets, s.Traffic.Responder.Bytes)
		fmt.Fprintf(w, "Session ID: %d", s.ID)
		if s.Parent != nil {
			fmt.Fprintf(w, "  Parent session: %d", *s.Parent)
		}
		if s.Mapping >= 0 {
			fmt.Fprintf(w, "  Port mapping: port_mapping[%d]", s.Mapping)
		}
		fmt.Fprint(w, "\n\n")
	}
	writeTotal(w, l)
}

// WriteCleared writes what `fastnat clear sessions` did.
func WriteCleared(w io.Writer, c ClearResult) {
	fmt.Fprintf(w, "cleared %d sessions", c.Cleared)
	if n := c.Matched - c.Cleared; n > 0 {
		fmt.Fprintf(w, " (%d more matched and ended on their own meanwhile)", n)
	}
	fmt.Fprintln(w)
}

// WriteExpectations writes the expectations as a table.
func WriteExpectations(w io.Writer, es []Expectation) {
	if len(es) == 0 {
		fmt.Fprintln(w, "no expectations")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROTOCOL\tSOURCE\tDESTINATION\tTRANSLATED TO\tAPPLICATION\tRULE\tPARENT\tEXPIRES IN")
	for _, e := range es {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", e.Protocol, e.Source, e.Dst, e.To, e.App, dash(e.Rule), e.Parent, seconds(e.TTL))
	}
	tw.Flush()
}

// WriteMappings writes the effective port-mapping table.
func WriteMappings(w io.Writer, ms []Mapping) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "APPLICATION\tPORT\tPROTOCOL\tSCOPE\tSOURCE\tALG SESSIONS\tALG REWRITES")
	for _, m := range ms {
		src := "default"
		if m.Index >= 0 {
			src = fmt.Sprintf("port_mapping[%d], line %d", m.Index, m.Line)
		}
		algS, algR := "-", "-"
		if m.App == "ftp" {
			algS, algR = fmt.Sprint(m.ALGSessions), fmt.Sprint(m.ALGRewritten)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", m.App, m.Port, m.Protocol, m.Scope, src, algS, algR)
	}
	tw.Flush()
}

// WriteStats writes a snapshot as readable sections. Drop reasons and
// counters that are zero are left out, except where a zero says something
// (rewrites of the FTP ALG).
func WriteStats(w io.Writer, s *metrics.Snapshot) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	section := func(title string) {
		tw.Flush()
		fmt.Fprintf(w, "\n%s\n", title)
	}
	if s.Build.Version != "" {
		fmt.Fprintf(w, "fastnat %s, ", s.Build.Version)
	}
	fmt.Fprintf(w, "up %s", seconds(s.UptimeSeconds))
	if s.ConfigFile != "" {
		fmt.Fprintf(w, ", configuration %s", s.ConfigFile)
	}
	fmt.Fprintf(w, ", reloads %d ok, %d refused, %d failed\n", s.Reloads.OK, s.Reloads.Refused, s.Reloads.Failed)
	if r := s.LastReload; r.Time != 0 && !r.OK {
		fmt.Fprintf(w, "last reload at %s FAILED: %s\n", time.Unix(r.Time, 0).UTC().Format(time.RFC3339), r.Error)
	}

	section("workers")
	fmt.Fprintln(tw, "  WORKER\tQUEUE\tRX PACKETS\tRX BYTES\tTX PACKETS\tTX BYTES\tTRANSLATED\tTO ALG\tDROPS\tBUSY")
	drops, events := map[string]uint64{}, map[string]uint64{}
	for _, wk := range s.Workers {
		busy := 0.0 // the average since the start
		if s.UptimeSeconds > 0 {
			busy = 100 * wk.BusySeconds / float64(s.UptimeSeconds)
		}
		fmt.Fprintf(tw, "  %d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f%%\n", wk.ID, wk.Queue, wk.RxPackets, wk.RxBytes,
			wk.TxPackets, wk.TxBytes, wk.Translated, wk.ALGDiverted, wk.TotalDrops(), busy)
		for r, n := range wk.Drops {
			drops[r] += n
		}
		for e, n := range wk.Events {
			events[e] += n
		}
	}
	section("interfaces")
	fmt.Fprintln(tw, "  WORKER\tINTERFACE\tRX\tTX\tKERNEL DROPS\tFILL RING EMPTY")
	for _, wk := range s.Workers {
		for _, p := range wk.Ports {
			var kd uint64
			for _, n := range p.Drops {
				kd += n
			}
			fmt.Fprintf(tw, "  %d\t%s\t%d\t%d\t%d\t%d\n", wk.ID, p.Interface, p.Rx, p.Tx, kd, p.FillRingEmpty)
		}
	}
	nonZero := func(title string, m map[string]uint64) {
		section(title)
		shown := false
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if n := m[k]; n > 0 {
				fmt.Fprintf(tw, "  %s\t%d\n", k, n)
				shown = true
			}
		}
		if !shown {
			fmt.Fprintln(tw, "  none")
		}
	}
	nonZero("drops by reason (all workers)", drops)
	nonZero("router events (all workers)", events)

	t := s.Table
	section("flow table")
	occ := 0.0
	if t.Capacity > 0 {
		occ = 100 * float64(t.Sessions) / float64(t.Capacity)
	}
	tw.Flush()
	fmt.Fprintf(w, "  sessions %d of %d (%.1f%%), expectations %d of %d\n", t.Sessions, t.Capacity, occ, t.Expectations, t.ExpectCapacity)
	fmt.Fprintf(w, "  created %d, expired %d, deleted %d, refused %d full, %d exists\n",
		t.Inserts, t.Expired, t.Deletes, t.Refused["full"], t.Refused["exists"])
	fmt.Fprintf(w, "  expectations: stored %d, used %d, expired %d, refused %d\n",
		t.ExpectInserts, t.ExpectMatched, t.ExpectExpired, t.ExpectRefused)

	section("sessions")
	fmt.Fprintln(tw, "  PROTOCOL\tAPPLICATION\tSESSIONS")
	for _, c := range s.Sessions {
		fmt.Fprintf(tw, "  %s\t%s\t%d\n", c.Protocol, c.App, c.Count)
	}
	section("port pools")
	fmt.Fprintln(tw, "  ADDRESS\tTCP\tUDP\tICMP\tCAPACITY (EACH)")
	for _, p := range s.Pools {
		capacity := "-" // a server address outside every pool
		if p.Capacity > 0 {
			capacity = fmt.Sprint(p.Capacity)
		}
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%s\n", p.Address, p.TCP, p.UDP, p.ICMP, capacity)
	}
	tw.Flush()
	fmt.Fprintf(w, "  endpoint-independent bindings %d\n", s.Bindings)
	if len(s.Blocks) > 0 {
		section("port blocks")
		fmt.Fprintln(tw, "  RULE\tBLOCK SIZE\tHELD\tCAPACITY\tQUOTA EXCEEDED\tEXHAUSTED")
		for _, b := range s.Blocks {
			fmt.Fprintf(tw, "  nat.outbound[%d]\t%d\t%d\t%d\t%d\t%d\n", b.Rule, b.BlockSize, b.Held, b.Capacity, b.QuotaExceeded, b.Exhausted)
		}
	}

	section("ftp alg")
	if s.FTP == nil {
		tw.Flush()
		fmt.Fprintln(w, "  off")
	} else {
		for _, fc := range metrics.FTPCounters {
			fmt.Fprintf(tw, "  %s\t%d\n", fc.Name, s.FTP[fc.Name])
		}
	}
	if c := s.Capture; c != nil {
		section("drop capture")
		tw.Flush()
		fmt.Fprintf(w, "  %s: written %d, rate limited %d, queue full %d, write errors %d\n", c.File, c.Written, c.RateLimited, c.QueueFull, c.Errors)
	}
	if e := s.Events; e != nil {
		section("event log")
		tw.Flush()
		fmt.Fprintf(w, "  %d events made, %d dropped at a full worker ring\n", e.Made, e.RingDropped)
		for _, x := range e.Exporters {
			fmt.Fprintf(w, "  %s: exported %d, queue dropped %d, failed %d\n", x.Name, x.Exported, x.QueueDropped, x.Failed)
		}
	}
	tw.Flush()
}
