package control

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/portmap"
)

// Rules is the NAT configuration a daemon runs (`fastnat show rules`), or
// a file holds (`fastnat check`): what new sessions are translated by.
type Rules struct {
	File string `json:"file"`
	// Loaded is when the daemon applied these rules (its start or last
	// successful reload); zero for a file.
	Loaded   time.Time      `json:"loaded,omitzero"`
	Outbound []OutboundRule `json:"outbound"`
	Servers  []ServerRule   `json:"servers"`
	// Timeouts are the idle timeouts by name ("tcp_established").
	Timeouts map[string]string `json:"timeouts"` // "2h4m", as the file writes them
	FTPALG   string            `json:"ftp_alg"`  // "off", or "on (...)" with its policy
}

// OutboundRule is one [[nat.outbound]] rule.
type OutboundRule struct {
	Index   int      `json:"index"`
	Inside  []string `json:"inside"`
	Pool    string   `json:"pool"` // consecutive addresses as ranges: "198.18.0.1-198.18.0.3,198.18.0.9"
	Ports   string   `json:"ports"`
	Mapping string   `json:"mapping"` // and how ports are allocated: blocks, deterministic
	Line    int      `json:"line"`
}

// ServerRule is one [[nat.server]] rule.
type ServerRule struct {
	Index    int            `json:"index"`
	Protocol string         `json:"protocol"`
	Public   netip.AddrPort `json:"public"`
	Inside   netip.AddrPort `json:"inside"`
	Line     int            `json:"line"`
}

// ListRules describes the rules of cfg, applied at loaded (zero for a
// file not running).
func ListRules(cfg *config.Config, loaded time.Time) Rules {
	r := Rules{File: cfg.File, Loaded: loaded, Outbound: []OutboundRule{}, Servers: []ServerRule{}}
	for i, o := range cfg.NAT.Outbound {
		inside := make([]string, len(o.Inside))
		for k, p := range o.Inside {
			inside[k] = p.String()
		}
		r.Outbound = append(r.Outbound, OutboundRule{Index: i, Inside: inside, Pool: PoolString(o.Pool),
			Ports: fmt.Sprintf("%d-%d", o.Ports.Lo, o.Ports.Hi), Mapping: allocation(o), Line: o.Line})
	}
	for i, s := range cfg.NAT.Server {
		r.Servers = append(r.Servers, ServerRule{Index: i, Protocol: portmap.ProtoName(s.Proto), Public: s.Public, Inside: s.Inside, Line: s.Line})
	}
	t := cfg.Timeouts
	r.Timeouts = map[string]string{
		"tcp_syn": config.FormatDuration(t.TCPSyn), "tcp_established": config.FormatDuration(t.TCPEstablished), "tcp_transitory": config.FormatDuration(t.TCPTransitory),
		"tcp_closed": config.FormatDuration(t.TCPClosed),
		"udp":        config.FormatDuration(t.UDP), "icmp": config.FormatDuration(t.ICMP), "other": config.FormatDuration(t.Other), "expectation": config.FormatDuration(t.Expectation),
	}
	r.FTPALG = "off"
	if cfg.ALG.FTP.Enabled {
		third := "refused"
		if cfg.ALG.FTP.AllowThirdParty {
			third = "allowed"
		}
		r.FTPALG = fmt.Sprintf("on (third-party addresses %s, at most %d expectations per session)", third, cfg.ALG.FTP.MaxExpectations)
	}
	return r
}

// allocation describes how an outbound rule hands out public ports, for
// `fastnat check` and `fastnat show rules`.
func allocation(o config.Outbound) string {
	switch {
	case o.Mapping == config.Deterministic:
		hosts := config.DeterministicHosts(&o)
		return fmt.Sprintf("deterministic: %d inside addresses, %d ports each", hosts, o.PortsPerHost)
	case o.BlockSize > 0:
		return fmt.Sprintf("%s, blocks of %d ports, at most %d per host", o.Mapping, o.BlockSize, o.BlocksPerHost)
	}
	return o.Mapping.String()
}

// PoolString writes a pool as ranges of consecutive addresses.
func PoolString(pool []netip.Addr) string {
	var parts []string
	for i := 0; i < len(pool); {
		j := i
		for j+1 < len(pool) && pool[j].Next() == pool[j+1] {
			j++
		}
		if i == j {
			parts = append(parts, pool[i].String())
		} else {
			parts = append(parts, pool[i].String()+"-"+pool[j].String())
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// WriteNATRules writes the outbound and server rules as tables, in the
// order they apply.
func WriteNATRules(w io.Writer, r Rules) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nnat outbound (the first rule whose inside prefix holds the source applies)")
	if len(r.Outbound) == 0 {
		fmt.Fprintln(tw, "  none")
	} else {
		fmt.Fprintln(tw, "  RULE\tINSIDE\tPOOL\tPORTS\tMAPPING\tLINE")
	}
	for _, o := range r.Outbound {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%d\n", o.Index, strings.Join(o.Inside, ","), o.Pool, o.Ports, o.Mapping, o.Line)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nnat server")
	if len(r.Servers) == 0 {
		fmt.Fprintln(tw, "  none")
	} else {
		fmt.Fprintln(tw, "  RULE\tPROTOCOL\tPUBLIC\tINSIDE\tLINE")
	}
	for _, s := range r.Servers {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%d\n", s.Index, s.Protocol, s.Public, s.Inside, s.Line)
	}
	tw.Flush()
}

// WriteRules writes what `fastnat show rules` prints: the file and when
// it was loaded, the NAT rules, the timeouts and the FTP ALG's policy.
func WriteRules(w io.Writer, r Rules) {
	fmt.Fprintf(w, "rules of %s", r.File)
	if !r.Loaded.IsZero() {
		fmt.Fprintf(w, ", loaded %s", r.Loaded.Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	WriteNATRules(w, r)
	t := r.Timeouts
	fmt.Fprintf(w, "\ntimeouts: tcp_syn %s, tcp_established %s, tcp_transitory %s, tcp_closed %s, udp %s, icmp %s, other %s, expectation %s\n",
		t["tcp_syn"], t["tcp_established"], t["tcp_transitory"], t["tcp_closed"], t["udp"], t["icmp"], t["other"], t["expectation"])
	fmt.Fprintf(w, "ftp alg: %s\n", r.FTPALG)
	fmt.Fprintln(w, "\n(fastnat show mappings lists the port mappings)")
}
