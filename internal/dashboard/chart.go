package dashboard

import (
	"strconv"

	"github.com/estkit/estkit/internal/admin"
)

// chart is a bar chart of issuance counts, drawn as SVG on the server so it
// needs no script; the same numbers go into a table for screen readers and
// text browsers. Coordinates are in the SVG's viewBox units.
type chart struct {
	ID, Title     string
	Width, Height int
	Plot          struct{ X, Y, W, H int } // the area bars are drawn in
	Bars          []bar
	Ticks         []tick  // horizontal grid lines with their counts
	Labels        []label // time labels under some bars
	Total, Max    int
}

type bar struct {
	X, Y, W, H int
	Count      int
	Label      string // the bucket's start, long form
}

type tick struct {
	Y     int
	Value int
}

type label struct {
	X    int
	Text string
}

const (
	chartWidth  = 720
	chartHeight = 220
	padLeft     = 40
	padRight    = 10
	padTop      = 10
	padBottom   = 30
)

// newChart lays out buckets; short and long are time layouts for the axis
// labels and for tooltips and the table.
func newChart(id, title string, buckets []admin.Bucket, short, long string) *chart {
	c := &chart{ID: id, Title: title, Width: chartWidth, Height: chartHeight}
	c.Plot.X, c.Plot.Y = padLeft, padTop
	c.Plot.W, c.Plot.H = chartWidth-padLeft-padRight, chartHeight-padTop-padBottom
	for _, b := range buckets {
		c.Total += b.Count
		c.Max = max(c.Max, b.Count)
	}
	top := niceCeil(c.Max)
	for _, v := range []int{0, top / 2, top} {
		if v == top/2 && (top%2 != 0 || top < 2) {
			continue
		}
		c.Ticks = append(c.Ticks, tick{Y: c.Plot.Y + c.Plot.H - v*c.Plot.H/top, Value: v})
	}
	n := max(len(buckets), 1)
	slot := c.Plot.W / n
	gap := max(slot/6, 1)
	every := max(n/6, 1)
	for i, b := range buckets {
		h := b.Count * c.Plot.H / top
		if b.Count > 0 && h < 2 {
			h = 2
		}
		x := c.Plot.X + i*slot
		c.Bars = append(c.Bars, bar{
			X: x + gap/2, Y: c.Plot.Y + c.Plot.H - h, W: slot - gap, H: h,
			Count: b.Count, Label: b.Start.UTC().Format(long),
		})
		if i%every == 0 {
			c.Labels = append(c.Labels, label{X: x + slot/2, Text: b.Start.UTC().Format(short)})
		}
	}
	return c
}

// niceCeil rounds n up to 1, 2 or 5 times a power of ten (at least 1).
func niceCeil(n int) int {
	if n <= 1 {
		return 1
	}
	for p := 1; ; p *= 10 {
		for _, m := range []int{1, 2, 5} {
			if m*p >= n {
				return m * p
			}
		}
	}
}

// String is the chart in words, for the SVG's accessible description.
func (c *chart) String() string {
	return c.Title + ": " + strconv.Itoa(c.Total) + " in total, at most " + strconv.Itoa(c.Max) + " in one interval"
}
