package bench

import (
	"image/color"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/recorder"
)

// drawn renders p on a recording canvas and returns every string it wrote
// and whether it drew a dashed line in the goal colour.
func drawn(t *testing.T, p *plot.Plot) (texts string, goal bool) {
	t.Helper()
	c := &recorder.Canvas{}
	p.Draw(draw.NewCanvas(c, 8*vg.Inch, 4.5*vg.Inch))
	var b strings.Builder
	var col color.Color
	for _, a := range c.Actions {
		switch a := a.(type) {
		case *recorder.FillString:
			b.WriteString(a.String + "\n")
		case *recorder.SetColor:
			col = a.Color
		case *recorder.SetLineDash:
			if len(a.Dashes) > 0 && col == color.Color(colorGoal) {
				goal = true
			}
		}
	}
	return b.String(), goal
}

// TestCharts: every chart writes each bar's value, names its series in a
// legend and draws its goal as a dashed red line.
func TestCharts(t *testing.T) {
	pipe := &PipelineReport{Machine: Machine{CPU: "Test CPU", Cores: 2}, Results: []PipelineResult{
		{Flows: 1, FrameSize: 60, Mpps: 7.27, NsPerPacket: 137.6},
		{Flows: 1048576, FrameSize: 60, Mpps: 3.23, NsPerPacket: 309.5},
	}}
	ft := &FlowtableReport{Machine: Machine{CPU: "Test CPU", Cores: 2}, Results: []FlowtableResult{
		{Impl: "fastnat", Sessions: 1000000, Goroutines: 1, NsPerLookup: 357.6, MLookupsSec: 2.8},
		{Impl: "xsync", Sessions: 1000000, Goroutines: 1, NsPerLookup: 388.7, MLookupsSec: 2.57},
		{Impl: "sync.Map", Sessions: 1000000, Goroutines: 1, NsPerLookup: 872.1, MLookupsSec: 1.15},
	}}
	pp, err := pipe.chart()
	if err != nil {
		t.Fatal(err)
	}
	fp, _, err := ft.chart()
	if err != nil {
		t.Fatal(err)
	}
	vp, _, err := testReport().chart()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		p    *plot.Plot
		want []string
	}{
		{"pipeline", pp, []string{"7.27 Mpps\n138 ns/pkt", "3.23 Mpps\n310 ns/pkt", "fastnat, 64-byte frames", "goal: 60 ns/pkt (16.7 Mpps) at 1M flows"}},
		{"flowtable", fp, []string{"358 ns\n2.8 M/s", "389 ns\n2.6 M/s", "872 ns\n1.1 M/s", "fastnat", "xsync", "sync.Map", "goal: 25 ns per lookup"}},
		{"veth", vp, []string{"0.90", "1.80\n≥2.00x", "1.20\n1.33x", "0.84\n1.20x", "failed", "kernel", "fastnat", "none", "goal: 2.0x the kernel"}},
	} {
		texts, goal := drawn(t, tc.p)
		for _, w := range tc.want {
			for _, line := range strings.Split(w, "\n") {
				if !strings.Contains(texts, line+"\n") {
					t.Errorf("%s chart lacks %q; it wrote:\n%s", tc.name, line, texts)
				}
			}
		}
		if !goal {
			t.Errorf("%s chart has no dashed goal line", tc.name)
		}
	}
	// And they save as PNG.
	dir := t.TempDir()
	if err := pipe.Plot(filepath.Join(dir, "p.png")); err != nil {
		t.Error(err)
	}
	if err := ft.Plot(filepath.Join(dir, "f.png")); err != nil {
		t.Error(err)
	}
	if err := (&FlowtableReport{}).Plot(filepath.Join(dir, "e.png")); err == nil {
		t.Error("an empty flowtable report plotted")
	}
}
