package bench

import (
	"fmt"
	"image/color"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
)

// vethColors gives each DUT a fixed colour: the kernel grey, fastnat
// blue, plain forwarding green.
var vethColors = map[string]color.Color{
	DUTKernel:  color.RGBA{R: 0x88, G: 0x88, B: 0x88, A: 0xff},
	DUTFastnat: color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	DUTNone:    color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
}

// Plot writes a bar chart of delivered Mpps to path (PNG, or any format
// gonum/plot infers from the extension): one group of bars per case
// (flows, frame size), one bar per DUT, each non-kernel bar labelled with
// its ratio to the kernel ("≥" where fastnat was generator-bound).
func (r *VethReport) Plot(path string) error {
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
		return fmt.Errorf("plot %s: no results", path)
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
	width := vg.Points(float64(min(40, 240/len(duts))))
	ymax := 0.0
	for d, dut := range duts {
		vals := make(plotter.Values, len(cases))
		var xys plotter.XYs
		var labels []string
		for i, k := range cases {
			for _, x := range r.Results {
				if x.DUT == dut && x.Flows == k.flows && x.FrameSize == k.size && x.Error != "" {
					xys = append(xys, plotter.XY{X: float64(i), Y: 0})
					labels = append(labels, "failed")
				}
				if x.DUT == dut && x.Flows == k.flows && x.FrameSize == k.size && x.Error == "" {
					vals[i] = x.DeliveredPPS / 1e6
					if q, ok := r.ratio(x); ok {
						ge := ""
						if q.Bound {
							ge = "≥"
						}
						xys = append(xys, plotter.XY{X: float64(i), Y: vals[i]})
						labels = append(labels, fmt.Sprintf("%s%.2fx", ge, q.PPS))
					}
				}
			}
			ymax = max(ymax, vals[i])
		}
		bars, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return fmt.Errorf("plot %s: %w", path, err)
		}
		bars.LineStyle.Width = 0
		bars.Color = vethColors[dut]
		if bars.Color == nil {
			bars.Color = color.Black
		}
		offset := (vg.Length(d) - vg.Length(len(duts)-1)/2) * width
		bars.Offset = offset
		p.Add(bars)
		p.Legend.Add(dut, bars)
		if len(xys) > 0 {
			l, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
			if err != nil {
				return fmt.Errorf("plot %s: %w", path, err)
			}
			for i := range l.TextStyle {
				l.TextStyle[i].XAlign = text.XCenter
				l.TextStyle[i].YAlign = text.YBottom
			}
			l.Offset = vg.Point{X: offset, Y: vg.Points(2)}
			p.Add(l)
		}
	}
	// Room for the labels and the legend above the bars, and for the
	// outer bars of the first and last group.
	p.Y.Max = ymax * 1.3
	p.X.Min, p.X.Max = -0.6, float64(len(cases))-0.4
	p.Legend.Top = true
	if err := p.Save(vg.Length(max(6, 1.6*float64(len(cases))))*vg.Inch, 4.5*vg.Inch, path); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return nil
}
