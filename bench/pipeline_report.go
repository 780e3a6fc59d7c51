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
	Flows          int     `json:"flows"`
	FrameSize      int     `json:"frame_size"`
	Packets        uint64  `json:"packets"`
	NsPerPacket    float64 `json:"ns_per_packet"`
	Mpps           float64 `json:"mpps"`
	NewSessionsSec float64 `json:"new_sessions_per_second"`
	BytesPerFlow   float64 `json:"table_bytes_per_session"`
	Drops          uint64  `json:"drops"`
	// Events and EventsDropped are what the event log made and dropped at
	// the worker's full ring, with Logging.
	Events        uint64 `json:"events,omitempty"`
	EventsDropped uint64 `json:"events_dropped,omitempty"`
}

// PipelineReport is the outcome of RunPipeline.
type PipelineReport struct {
	Machine Machine          `json:"machine"`
	Batch   int              `json:"batch"`
	Logging bool             `json:"logging"`
	Results []PipelineResult `json:"results"`
}

// RunPipeline builds a PipelineRig per flow count (timing session
// creation: the new-session rate) and pushes cfg.Packets frames through
// it (the forwarding rate over established sessions, one core).
func RunPipeline(cfg PipelineBenchConfig) (*PipelineReport, error) {
	if cfg.Packets <= 0 {
		cfg.Packets = 5_000_000
	}
	if cfg.Batch == 0 {
		cfg.Batch = 64
	}
	rep := &PipelineReport{Machine: ThisMachine(), Batch: cfg.Batch, Logging: cfg.Logging}
	for _, flows := range cfg.Flows {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "pipeline: %d flows: creating sessions...\n", flows)
		}
		r, err := NewPipelineRig(PipelineConfig{Flows: flows, FrameSize: cfg.FrameSize, Batch: cfg.Batch, Logging: cfg.Logging})
		if err != nil {
			return rep, err
		}
		r.Run(min(cfg.Packets/10, 1_000_000)) // warm caches and branch predictors
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "pipeline: %d flows: %d sessions in %v; forwarding %d frames...\n", flows, flows, r.Setup.Round(time.Millisecond), cfg.Packets)
		}
		n, d := r.Run(cfg.Packets)
		r.Close()
		ns := float64(d.Nanoseconds()) / float64(n)
		made, dropped := r.Events()
		rep.Results = append(rep.Results, PipelineResult{
			Flows: flows, FrameSize: r.cfg.FrameSize + 4, Packets: n, NsPerPacket: ns, Mpps: 1e3 / ns,
			NewSessionsSec: float64(flows) / r.Setup.Seconds(), BytesPerFlow: r.BytesPerSession, Drops: r.Drops(),
			Events: made, EventsDropped: dropped,
		})
	}
	return rep, nil
}

// WriteTable prints the report as a table, with the machine first.
func (r *PipelineReport) WriteTable(w io.Writer) error {
	log := "off"
	if r.Logging {
		log = "on"
	}
	fmt.Fprintf(w, "fastnat bench pipeline — one worker, memory ports, batch %d, event log %s\n%s\n\n", r.Batch, log, r.Machine)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "flows\tframe B\tns/pkt\tMpps\tnew sessions/s\ttable B/session\tdrops\t"
	if r.Logging {
		head += "events\tevents dropped\t"
	}
	fmt.Fprintln(tw, head)
	for _, x := range r.Results {
		fmt.Fprintf(tw, "%d\t%d\t%.1f\t%.2f\t%.0f\t%.0f\t%d\t", x.Flows, x.FrameSize, x.NsPerPacket, x.Mpps, x.NewSessionsSec, x.BytesPerFlow, x.Drops)
		if r.Logging {
			fmt.Fprintf(tw, "%d\t%d\t", x.Events, x.EventsDropped)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
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
		labels[i] = fmt.Sprintf("%.2f Mpps\n%.0f ns/pkt", x.Mpps, x.NsPerPacket)
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
