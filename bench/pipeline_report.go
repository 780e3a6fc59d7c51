package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
)

// PipelineBenchConfig is `fastnat bench pipeline`: the in-memory pipeline
// on one core for each flow count.
type PipelineBenchConfig struct {
	Flows     []int
	FrameSize int
	Batch     int
	Packets   int       // per flow count
	Logging   bool      // the NAT event log on (PipelineConfig.Logging)
	Progress  io.Writer // a line per case; nil: silent
}

// PipelineResult is one case of a pipeline benchmark.
type PipelineResult struct {
	Flows       int     `json:"flows"`
	FrameSize   int     `json:"frame_size"`
	Packets     uint64  `json:"packets"`
	NsPerPacket float64 `json:"ns_per_packet"`
	// WorkerNs is NsPerPacket less the harness's own cost (the report's
	// BaselineNs): what the worker spends on a packet.
	WorkerNs       float64       `json:"worker_ns_per_packet"`
	Mpps           float64       `json:"mpps"`
	NewSessionsSec float64       `json:"new_sessions_per_second"`
	Memory         SessionMemory `json:"bytes_per_session"`
	Drops          uint64        `json:"drops"`
	// Events and EventsDropped are what the event log made and dropped at
	// the worker's full ring, with Logging.
	Events        uint64 `json:"events,omitempty"`
	EventsDropped uint64 `json:"events_dropped,omitempty"`
}

// PipelineReport is the outcome of RunPipeline.
type PipelineReport struct {
	Machine Machine `json:"machine"`
	Batch   int     `json:"batch"`
	Logging bool    `json:"logging"`
	// BaselineNs is the harness alone (PipelineConfig.Baseline): the
	// generator, the memory ports and the sink, per packet.
	BaselineNs float64 `json:"baseline_ns_per_packet"`
	// Floor is the machine's memory floor for an array the size of the
	// largest case's table.
	Floor   Floor            `json:"memory_floor"`
	Results []PipelineResult `json:"results"`
}

// RunPipeline measures the harness alone (the baseline) and the memory
// floor, then builds a PipelineRig per flow count (timing session
// creation: the new-session rate) and pushes cfg.Packets frames through it
// (the forwarding rate over established sessions, one core).
func RunPipeline(cfg PipelineBenchConfig) (*PipelineReport, error) {
	if cfg.Packets <= 0 {
		cfg.Packets = 5_000_000
	}
	if cfg.Batch == 0 {
		cfg.Batch = 64
	}
	rep := &PipelineReport{Machine: ThisMachine(), Batch: cfg.Batch, Logging: cfg.Logging}
	progress := func(format string, a ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "pipeline: "+format+"\n", a...)
		}
	}
	progress("the harness alone (generator, memory ports, sink)...")
	base, err := NewPipelineRig(PipelineConfig{FrameSize: cfg.FrameSize, Batch: cfg.Batch, Baseline: true})
	if err != nil {
		return rep, err
	}
	base.Run(min(cfg.Packets/10, 1_000_000))
	n, d := base.Run(cfg.Packets)
	base.Close()
	rep.BaselineNs = float64(d.Nanoseconds()) / float64(n)
	largest := slices.Max(cfg.Flows)
	progress("the memory floor over %d MiB...", int64(largest)*160>>20)
	if rep.Floor, err = MeasureFloor(int64(largest)*160, 4_000_000); err != nil {
		return rep, err
	}
	for _, flows := range cfg.Flows {
		progress("%d flows: creating sessions...", flows)
		r, err := NewPipelineRig(PipelineConfig{Flows: flows, FrameSize: cfg.FrameSize, Batch: cfg.Batch, Logging: cfg.Logging})
		if err != nil {
			return rep, err
		}
		r.Run(min(cfg.Packets/10, 1_000_000)) // warm caches and branch predictors
		progress("%d flows: %d sessions in %v; forwarding %d frames...", flows, flows, r.Setup.Round(time.Millisecond), cfg.Packets)
		n, d := r.Run(cfg.Packets)
		r.Close()
		ns := float64(d.Nanoseconds()) / float64(n)
		made, dropped := r.Events()
		rep.Results = append(rep.Results, PipelineResult{
			Flows: flows, FrameSize: r.cfg.FrameSize + 4, Packets: n, NsPerPacket: ns, WorkerNs: ns - rep.BaselineNs, Mpps: 1e3 / ns,
			NewSessionsSec: float64(flows) / r.Setup.Seconds(), Memory: r.Memory, Drops: r.Drops(),
			Events: made, EventsDropped: dropped,
		})
	}
	return rep, nil
}

// WriteTable prints the report as a table, with the machine, the harness's
// cost and the memory floor first.
func (r *PipelineReport) WriteTable(w io.Writer) error {
	log := "off"
	if r.Logging {
		log = "on"
	}
	fmt.Fprintf(w, "fastnat bench pipeline — one worker, memory ports, batch %d, event log %s\n%s\n\n", r.Batch, log, r.Machine)
	fmt.Fprintf(w, "harness alone (generator, memory ports, sink): %.1f ns/pkt; worker = total - harness\n", r.BaselineNs)
	fmt.Fprintf(w, "memory floor (%d MiB, %d%% on huge pages): one random read %.0f ns alone, %.1f ns with %d in flight;\n",
		r.Floor.Bytes>>20, percent(r.Floor.Huge, r.Floor.Bytes), r.Floor.Alone, r.Floor.Overlapped, floorChains)
	fmt.Fprintf(w, "  a packet of a large table reads 2 random lines (index bucket, session): at least %.0f ns\n\n", 2*r.Floor.Overlapped)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "flows\tframe B\tns/pkt\tworker ns/pkt\tMpps\tnew sessions/s\tB/session\t(index+hot+cold+expect+NAT)\thuge\tdrops\t"
	if r.Logging {
		head += "events\tevents dropped\t"
	}
	fmt.Fprintln(tw, head)
	for _, x := range r.Results {
		m := x.Memory
		fmt.Fprintf(tw, "%d\t%d\t%.1f\t%.1f\t%.2f\t%.0f\t%.0f\t%.0f+%.0f+%.0f+%.0f+%.0f\t%.0f%%\t%d\t", x.Flows, x.FrameSize, x.NsPerPacket, x.WorkerNs, x.Mpps,
			x.NewSessionsSec, m.Total(), m.Index, m.Hot, m.Cold, m.Expect, m.NAT, 100*m.HugeShare, x.Drops)
		if r.Logging {
			fmt.Fprintf(tw, "%d\t%d\t", x.Events, x.EventsDropped)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func percent(part, whole int64) int64 {
	if whole == 0 {
		return 0
	}
	return 100 * part / whole
}

// WriteJSON writes the report to path.
func (r *PipelineReport) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Plot writes a bar chart of Mpps per flow count to path: each bar
// labelled with its Mpps and ns per packet, and the goal (PipelineGoalNs
// per packet) as a dashed line.
func (r *PipelineReport) Plot(path string) error {
	p, err := r.chart()
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return savePlot(p, len(r.Results), path)
}

// chart builds Plot's chart.
func (r *PipelineReport) chart() (*plot.Plot, error) {
	if len(r.Results) == 0 {
		return nil, fmt.Errorf("no results")
	}
	p := plot.New()
	p.Title.Text = "fastnat bench pipeline: Mpps on one core\n" + r.Machine.String()
	p.Y.Label.Text = "Mpps"
	p.Y.Min = 0
	vals := make(plotter.Values, len(r.Results))
	names := make([]string, len(r.Results))
	labels := make([]string, len(r.Results))
	for i, x := range r.Results {
		vals[i], names[i] = x.Mpps, fmt.Sprintf("%d flows", x.Flows)
		if x.Flows == 1 {
			names[i] = "1 flow"
		}
		labels[i] = fmt.Sprintf("%.2f Mpps\n%.0f ns/pkt\n(worker %.0f)", x.Mpps, x.NsPerPacket, x.WorkerNs)
	}
	name := fmt.Sprintf("fastnat, %d-byte frames", r.Results[0].FrameSize+4)
	if _, err := groupedBars(p, []barSeries{{name, colorFastnat, vals, labels}}, 40); err != nil {
		return nil, err
	}
	goal := 1e3 / PipelineGoalNs // Mpps
	if err := goalLine(p, -0.5, float64(len(vals))-0.5, goal, fmt.Sprintf("goal: %d ns/pkt (%.1f Mpps) at 1M flows", PipelineGoalNs, goal)); err != nil {
		return nil, err
	}
	p.NominalX(names...)
	p.Y.Max = max(goal, slices.Max(vals)) * 1.25
	p.X.Min, p.X.Max = -0.6, float64(len(vals))-0.4
	p.Legend.Top = true
	return p, nil
}
