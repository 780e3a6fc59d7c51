package bench

import (
	"fmt"
	"image/color"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// The goals the benchmarks are measured against (the issues' bars), drawn
// on the charts.
const (
	// PipelineGoalNs is the in-memory pipeline's per-packet budget at
	// 1M flows.
	PipelineGoalNs = 60
	// FlowtableGoalNs is the flow table's budget for one lookup.
	FlowtableGoalNs = 25
)

// Colours of the charts: fastnat blue, the baselines grey and orange,
// plain forwarding green, goals red.
var (
	colorFastnat = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	colorGrey    = color.RGBA{R: 0x88, G: 0x88, B: 0x88, A: 0xff}
	colorOrange  = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
	colorGreen   = color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
	colorGoal    = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
)

// barLabels writes a label above each bar of a group of bars drawn with
// offset; labels[i] "" leaves bar i unlabelled.
func barLabels(p *plot.Plot, vals plotter.Values, labels []string, offset vg.Length) error {
	var xys plotter.XYs
	var ls []string
	for i, l := range labels {
		if l != "" {
			xys = append(xys, plotter.XY{X: float64(i), Y: vals[i]})
			ls = append(ls, l)
		}
	}
	if len(xys) == 0 {
		return nil
	}
	l, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: ls})
	if err != nil {
		return err
	}
	for i := range l.TextStyle {
		l.TextStyle[i].XAlign = text.XCenter
		l.TextStyle[i].YAlign = text.YBottom
		l.TextStyle[i].Font.Size = vg.Points(8)
	}
	l.Offset = vg.Point{X: offset, Y: vg.Points(2)}
	p.Add(l)
	return nil
}

// barSeries is one series of a grouped bar chart: its legend name, colour,
// and a value and a label per group ("" for no label).
type barSeries struct {
	name   string
	color  color.Color
	vals   plotter.Values
	labels []string
}

// groupedBars draws the series side by side within each group (bars at
// most maxWidth points wide), each with its legend entry and its labels
// above the bars, and returns the largest value.
func groupedBars(p *plot.Plot, series []barSeries, maxWidth float64) (float64, error) {
	width := vg.Points(min(maxWidth, 240/float64(len(series))))
	ymax := 0.0
	for k, s := range series {
		bars, err := plotter.NewBarChart(s.vals, width)
		if err != nil {
			return 0, err
		}
		bars.LineStyle.Width = 0
		bars.Color = s.color
		if bars.Color == nil {
			bars.Color = color.Black
		}
		bars.Offset = (vg.Length(k) - vg.Length(len(series)-1)/2) * width
		p.Add(bars)
		p.Legend.Add(s.name, bars)
		if err := barLabels(p, s.vals, s.labels, bars.Offset); err != nil {
			return 0, err
		}
		ymax = max(ymax, slices.Max(s.vals))
	}
	return ymax, nil
}

// goalLine draws a dashed red line at y across the chart (x from lo to hi)
// and names it in the legend.
func goalLine(p *plot.Plot, lo, hi, y float64, name string) error {
	return goalSegments(p, []plotter.XYs{{{X: lo, Y: y}, {X: hi, Y: y}}}, name)
}

// goalSegments draws dashed red segments (a goal per group) and names
// them once in the legend.
func goalSegments(p *plot.Plot, segs []plotter.XYs, name string) error {
	for i, s := range segs {
		l, err := plotter.NewLine(s)
		if err != nil {
			return err
		}
		l.LineStyle = draw.LineStyle{Color: colorGoal, Width: vg.Points(1.5), Dashes: []vg.Length{vg.Points(5), vg.Points(3)}}
		p.Add(l)
		if i == 0 {
			p.Legend.Add(name, l)
		}
	}
	return nil
}

// savePlot writes p to path, sized for n groups of bars.
func savePlot(p *plot.Plot, n int, path string) error {
	if err := p.Save(vg.Length(max(6, 1.6*float64(n)))*vg.Inch, 4.5*vg.Inch, path); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return nil
}
