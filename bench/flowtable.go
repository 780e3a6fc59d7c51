package bench

import (
	"fmt"
	"image/color"
	"io"
	"runtime"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/puzpuzpuz/xsync/v4"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/packet"
)

// FlowtableBenchConfig is `fastnat bench flowtable`: lookup hits in
// fastnat's flow table, xsync.Map and sync.Map holding the same sessions
// (both keys of each), side by side. The go test benchmarks in this
// package (BenchmarkFlowtable) measure more operations; this is the
// operator's quick comparison.
type FlowtableBenchConfig struct {
	Sessions   []int
	Goroutines []int
	Lookups    int       // per goroutine and case
	Progress   io.Writer // nil: silent
}

// FlowtableResult is one (implementation, size, goroutines) case.
type FlowtableResult struct {
	Impl          string  `json:"impl"`
	Sessions      int     `json:"sessions"`
	Goroutines    int     `json:"goroutines"`
	NsPerLookup   float64 `json:"ns_per_lookup"`
	MLookupsSec   float64 `json:"million_lookups_per_second"`
	BytesPerEntry float64 `json:"heap_bytes_per_session"`
}

// FlowtableReport is the outcome of RunFlowtable.
type FlowtableReport struct {
	Machine Machine           `json:"machine"`
	Results []FlowtableResult `json:"results"`
}

// ftKey is key i of a table of sessions: even i the original tuple of
// session i/2, odd i its reply tuple after source NAT.
func ftKey(i uint64) packet.Tuple {
	j := i >> 1
	if i&1 == 0 {
		return packet.Tuple{SrcAddr: 0x0a000000 | uint32(j>>14)&0xffffff, DstAddr: 0xc6120001,
			SrcPort: 1024 + uint16(j&0x3fff), DstPort: 80, Proto: packet.ProtoTCP}
	}
	return packet.Tuple{SrcAddr: 0xc6120001, DstAddr: 0xc6130000 | uint32(j>>16)&0xffff,
		SrcPort: 80, DstPort: uint16(j), Proto: packet.ProtoTCP}
}

// RunFlowtable builds each implementation at each size, then times random
// lookup hits from each goroutine count.
func RunFlowtable(cfg FlowtableBenchConfig) (*FlowtableReport, error) {
	if cfg.Lookups <= 0 {
		cfg.Lookups = 5_000_000
	}
	rep := &FlowtableReport{Machine: ThisMachine()}
	for _, n := range cfg.Sessions {
		for _, impl := range []string{"fastnat", "xsync", "sync.Map"} {
			if cfg.Progress != nil {
				fmt.Fprintf(cfg.Progress, "flowtable: %s with %d sessions: building...\n", impl, n)
			}
			lookup, bytes, err := buildTable(impl, n)
			if err != nil {
				return rep, err
			}
			for _, g := range cfg.Goroutines {
				ns := timeLookups(lookup, uint64(2*n), g, cfg.Lookups)
				rep.Results = append(rep.Results, FlowtableResult{Impl: impl, Sessions: n, Goroutines: g,
					NsPerLookup: ns, MLookupsSec: float64(g) * 1e3 / ns, BytesPerEntry: bytes})
			}
			lookup = nil
			runtime.GC()
		}
	}
	return rep, nil
}

// buildTable fills impl with n sessions and returns a lookup function that
// reports a hit, and the bytes per session the table took: its heap
// growth, and for fastnat the storage it maps outside the heap.
func buildTable(impl string, n int) (func(packet.Tuple) bool, float64, error) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var lookup func(packet.Tuple) bool
	var mapped int64
	switch impl {
	case "fastnat":
		t, err := flowtable.New(flowtable.Config{MaxSessions: n})
		if err != nil {
			return nil, 0, err
		}
		var s flowtable.Session
		for j := uint64(0); j < uint64(n); j++ {
			s.Key[flowtable.Orig], s.Key[flowtable.Reply] = ftKey(2*j), ftKey(2*j+1)
			if _, _, r := t.Insert(&s, 0, 300, 1); r != flowtable.Inserted {
				return nil, 0, fmt.Errorf("flowtable insert %d: %v", j, r)
			}
		}
		m := t.Memory()
		mapped = m.Hot + m.Cold + m.Index // the expectations are in the heap
		lookup = func(k packet.Tuple) bool { _, _, ok := t.Lookup(k); return ok }
	case "xsync":
		m := xsync.NewMap[packet.Tuple, uint32](xsync.WithPresize(2 * n))
		for i := uint64(0); i < uint64(2*n); i++ {
			m.Store(ftKey(i), uint32(i>>1))
		}
		lookup = func(k packet.Tuple) bool { _, ok := m.Load(k); return ok }
	case "sync.Map":
		var m sync.Map
		for i := uint64(0); i < uint64(2*n); i++ {
			m.Store(ftKey(i), uint32(i>>1))
		}
		lookup = func(k packet.Tuple) bool { _, ok := m.Load(k); return ok }
	default:
		return nil, 0, fmt.Errorf("unknown table %q", impl)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	return lookup, float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)+mapped) / float64(n), nil
}

// timeLookups runs lookups random hits on each of g goroutines and returns
// the mean wall time per lookup of one goroutine.
func timeLookups(lookup func(packet.Tuple) bool, keys uint64, g, lookups int) float64 {
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < g; w++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			x := seed*0x9e3779b97f4a7c15 | 1
			for i := 0; i < lookups; i++ {
				x ^= x << 13
				x ^= x >> 7
				x ^= x << 17
				if !lookup(ftKey((x >> 11) % keys)) {
					panic("bench: a present key was not found")
				}
			}
		}(uint64(w + 1))
	}
	wg.Wait()
	return float64(time.Since(start).Nanoseconds()) / float64(lookups)
}

// WriteTable prints the report with fastnat's speed-up over each other
// table.
func (r *FlowtableReport) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "fastnat bench flowtable — random lookup hits, both keys of every session\n%s\n\n", r.Machine)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "table\tsessions\tgoroutines\tns/lookup\tM lookups/s\tB/session\tfastnat ×\t")
	for _, x := range r.Results {
		ratio := "-"
		for _, y := range r.Results {
			if y.Impl == "fastnat" && x.Impl != "fastnat" && y.Sessions == x.Sessions && y.Goroutines == x.Goroutines {
				ratio = fmt.Sprintf("%.2f", y.MLookupsSec/x.MLookupsSec)
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.1f\t%.0f\t%s\t\n", x.Impl, x.Sessions, x.Goroutines, x.NsPerLookup, x.MLookupsSec, x.BytesPerEntry, ratio)
	}
	return tw.Flush()
}

// WriteJSON writes the report to path.
func (r *FlowtableReport) WriteJSON(path string) error {
	return writeJSON(path, r)
}

// flowtableColors gives each table a fixed colour.
var flowtableColors = map[string]color.Color{"fastnat": colorFastnat, "xsync": colorOrange, "sync.Map": colorGrey}

// Plot writes a bar chart of ns per lookup to path: one group per case
// (sessions, goroutines), one bar per table with its ns and M lookups/s,
// a legend, and the goal (FlowtableGoalNs per lookup) as a dashed line.
func (r *FlowtableReport) Plot(path string) error {
	p, n, err := r.chart()
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return savePlot(p, n, path)
}

// chart builds Plot's chart and says how many groups it has.
func (r *FlowtableReport) chart() (*plot.Plot, int, error) {
	type group struct{ sessions, goroutines int }
	var groups []group
	var impls []string
	for _, x := range r.Results {
		if g := (group{x.Sessions, x.Goroutines}); !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
		if !slices.Contains(impls, x.Impl) {
			impls = append(impls, x.Impl)
		}
	}
	if len(groups) == 0 {
		return nil, 0, fmt.Errorf("no results")
	}
	p := plot.New()
	p.Title.Text = "fastnat bench flowtable: ns per random lookup hit (lower is better)\n" + r.Machine.String()
	p.Y.Label.Text = "ns per lookup"
	p.Y.Min = 0
	names := make([]string, len(groups))
	for i, g := range groups {
		gs := "goroutines"
		if g.goroutines == 1 {
			gs = "goroutine"
		}
		names[i] = fmt.Sprintf("%d sessions\n%d %s", g.sessions, g.goroutines, gs)
	}
	var series []barSeries
	for _, impl := range impls {
		s := barSeries{impl, flowtableColors[impl], make(plotter.Values, len(groups)), make([]string, len(groups))}
		for i, g := range groups {
			for _, x := range r.Results {
				if x.Impl == impl && x.Sessions == g.sessions && x.Goroutines == g.goroutines {
					s.vals[i] = x.NsPerLookup
					s.labels[i] = fmt.Sprintf("%.0f ns\n%.1f M/s", x.NsPerLookup, x.MLookupsSec)
				}
			}
		}
		series = append(series, s)
	}
	ymax, err := groupedBars(p, series, 36)
	if err != nil {
		return nil, 0, err
	}
	if err := goalLine(p, -0.5, float64(len(groups))-0.5, FlowtableGoalNs, fmt.Sprintf("goal: %d ns per lookup", FlowtableGoalNs)); err != nil {
		return nil, 0, err
	}
	p.NominalX(names...)
	p.Y.Max = max(ymax, FlowtableGoalNs) * 1.3
	p.X.Min, p.X.Max = -0.6, float64(len(groups))-0.4
	p.Legend.Top = true
	return p, len(groups), nil
}
