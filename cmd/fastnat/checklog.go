package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/natlog"
)

// printLogging writes the [logging] section of `fastnat check`.
func printLogging(w io.Writer, c *config.Config) {
	l := c.Logging
	fmt.Fprintf(w, "  %d events per worker ring\n", l.Ring)
	if len(l.IPFIX)+len(l.Syslog) == 0 {
		fmt.Fprintln(w, "  no exporters (fastnat events still streams them)")
	}
	for _, x := range l.IPFIX {
		fmt.Fprintf(w, "  ipfix to %s, domain %d, templates every %s, messages up to %d bytes, %s (line %d)\n",
			x.Collector, x.Domain, config.FormatDuration(x.TemplateRefresh), x.MaxMessage, eventNames(x.Events), x.Line)
	}
	for _, s := range l.Syslog {
		host := s.Hostname
		if host == "" {
			host = "this machine's name"
		}
		fmt.Fprintf(w, "  syslog over %s to %s, facility %d, host %s, %s (line %d)\n",
			s.Transport, s.Address, s.Facility, host, eventNames(s.Events), s.Line)
	}
}

func eventNames(set natlog.TypeSet) string {
	if set == natlog.AllTypes {
		return "every event"
	}
	var names []string
	for t := natlog.Type(1); t < natlog.NumTypes; t++ {
		if set.Has(t) {
			names = append(names, t.String())
		}
	}
	return "events " + strings.Join(names, ",")
}
