package bench

import (
	"fmt"
	"image/color"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
)

// vethColors gives each DUT a fixed colour: the kernel grey, fastnat
// blue, plain forwarding green.
var vethColors = map[string]color.Color{DUTKernel: colorGrey, DUTFastnat: colorFastnat, DUTNone: colorGreen}

// Plot writes a bar chart of delivered Mpps to path (PNG, or any format
// gonum/plot infers from the extension): one group of bars per case
// (flows, frame size), one bar per DUT with its Mpps, each non-kernel bar
// also with its ratio to the kernel ("≥" where fastnat was
// generator-bound), a legend, and VethGoal times the kernel's rate as a
// dashed goal over each case.
func (r *VethReport) Plot(path string) error {
	p, n, err := r.chart()
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return savePlot(p, n, path)
}

// chart builds Plot's chart and says how many groups it has.
func (r *VethReport) chart() (*plot.Plot, int, error) {
	r.Compare()
	var cases []caseKey
	var duts []string
	for _, x := range r.Results {
		k := caseKey{x.Flows, x.FrameSize}
		if !slices.Contains(cases, k) {
			cases = append(cases, k)
		}
		if !slices.Contains(duts, x.DUT) {
			duts = append(duts, x.DUT)
		}
	}
	if len(cases) == 0 {
		return nil, 0, fmt.Errorf("no results")
	}
	p := plot.New()
	p.Title.Text = "fastnat bench veth: delivered Mpps\n" + r.Machine.String()
	p.Y.Label.Text = "delivered Mpps"
	p.Y.Min = 0
	names := make([]string, len(cases))
	for i, k := range cases {
		unit := "flows"
		if k.flows == 1 {
			unit = "flow"
		}
		names[i] = fmt.Sprintf("%d %s\n%d B", k.flows, unit, k.size)
	}
	p.NominalX(names...)
	ymax := 0.0
	var goals []plotter.XYs
	var series []barSeries
	for _, dut := range duts {
		vals := make(plotter.Values, len(cases))
		labels := make([]string, len(cases))
		for i, k := range cases {
			for _, x := range r.Results {
				if x.DUT != dut || x.Flows != k.flows || x.FrameSize != k.size {
					continue
				}
				if x.Error != "" {
					labels[i] = "failed"
					continue
				}
				vals[i] = x.DeliveredPPS / 1e6
				labels[i] = fmt.Sprintf("%.2f", vals[i])
				if q, ok := r.ratio(x); ok {
					ge := ""
					if q.Bound {
						ge = "≥"
					}
					labels[i] += fmt.Sprintf("\n%s%.2fx", ge, q.PPS)
				}
				if dut == DUTKernel && vals[i] > 0 && slices.Contains(duts, DUTFastnat) {
					g := VethGoal * vals[i]
					goals = append(goals, plotter.XYs{{X: float64(i) - 0.45, Y: g}, {X: float64(i) + 0.45, Y: g}})
					ymax = max(ymax, g)
				}
			}
		}
		series = append(series, barSeries{dut, vethColors[dut], vals, labels})
	}
	bmax, err := groupedBars(p, series, 40)
	if err != nil {
		return nil, 0, err
	}
	ymax = max(ymax, bmax)
	if len(goals) > 0 {
		if err := goalSegments(p, goals, fmt.Sprintf("goal: %.1fx the kernel", VethGoal)); err != nil {
			return nil, 0, err
		}
	}
	// Room for the labels and the legend above the bars, and for the
	// outer bars of the first and last group.
	p.Y.Max = ymax * 1.35
	p.X.Min, p.X.Max = -0.6, float64(len(cases))-0.4
	p.Legend.Top = true
	return p, len(cases), nil
}
