package main

import (
	"fmt"
	"html"
	"math"
	"strings"
	"time"
)

// report is what a run found.
type report struct {
	Started time.Time
	Took    time.Duration
	Config  config
	Machine string
	Results []result

	OneExchange        time.Duration // one exchange through the server, no contention
	HerdMerged         uint64        // herd requests that joined another's exchange
	MemUsers           int           // users cached by the memory scenario
	HeapPerUser        float64       // bytes the middleware holds per cached user
	ProcessHeapPerUser float64       // the whole process's growth per user (tiptest and client included)
	ChurnEvictions     uint64
	ChurnHeld          int
	ChurnAtBound       int64  // live heap growth once the first churn-bound users are cached
	ChurnAtEnd         int64  // live heap growth once every churn user has passed
	RefreshBackground  uint64 // background renewals of the refresh scenario
	RefreshMoves       int    // clock moves done
	Fleet              []fleetResult
	FleetSkipped       []string // the stores the fleet scenario left out, and why
}

// byName returns the result named name, or nil.
func (r *report) byName(name string) *result {
	for i := range r.Results {
		if strings.HasPrefix(r.Results[i].Name, name) {
			return &r.Results[i]
		}
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func mib(b uint64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }

func perUser(n uint64, users int) string {
	if users == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", float64(n)/float64(users))
}

// markdown returns the report as a Markdown table and notes.
func (r *report) markdown() string {
	var b strings.Builder
	c := r.Config
	fmt.Fprintf(&b, "Load run of %s on %s, %.0f s. AWS latency %v per call, %d clients, %s tokens, at most %v and %d requests per timed scenario.\n\n",
		r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Machine, r.Took.Seconds(), c.latency, c.concurrency, c.alg, c.duration, c.requests)
	if len(r.Results) == 0 { // only the fleet ran
		b.WriteString(r.fleetMarkdown())
		return b.String()
	}
	b.WriteString("| scenario | users | requests | errors | req/s | p50 ms | p90 ms | p99 ms | max ms | AWS calls/req | exchanges/user | renewals/user | peak heap MiB |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, x := range r.Results {
		calls := "-"
		if x.Requests > 0 {
			calls = fmt.Sprintf("%.3f", float64(x.AWSCalls)/float64(x.Requests))
		}
		ex, rn := perUser(x.Exchanges, x.Users), perUser(x.Renewals, x.Users)
		if x.Name == "bare" {
			calls, ex, rn = "-", "-", "-"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %.0f | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			x.Name, x.Users, x.Requests, x.Errors, x.reqPerSec(), ms(x.P50), ms(x.P90), ms(x.P99), ms(x.Max), calls, ex, rn, mib(x.PeakHeap))
	}
	b.WriteString("\n")
	if bare, warm := r.byName("bare"), r.byName("warm"); bare != nil && warm != nil && bare.reqPerSec() > 0 {
		fmt.Fprintf(&b, "- warm throughput: %.0f%% of the bare server's (target at least 90%%).\n", 100*warm.reqPerSec()/bare.reqPerSec())
	}
	if h := r.byName("herd"); h != nil {
		ratio := "-"
		if r.OneExchange > 0 {
			ratio = fmt.Sprintf("%.1f", float64(h.P99)/float64(r.OneExchange))
		}
		fmt.Fprintf(&b, "- herd: %d users x %d requests: %d exchanges, %d requests joined one under way; one exchange alone takes %s ms, herd p99 = %s x that (target: exactly %d exchanges, p99 under 3x).\n",
			h.Users, c.herdPerUser, h.Exchanges, r.HerdMerged, ms(r.OneExchange), ratio, h.Users)
	}
	switch {
	case r.MemUsers > 0 && r.HeapPerUser > 0:
		fmt.Fprintf(&b, "- memory: %d users cached: the middleware holds %.0f bytes per user (%.2f KiB; target at most 4 KiB); the whole process (local AWS and client included) grew %.0f bytes per user.\n",
			r.MemUsers, r.HeapPerUser, r.HeapPerUser/1024, r.ProcessHeapPerUser)
	case r.MemUsers > 0:
		fmt.Fprintf(&b, "- memory: %d users cached: the middleware was not collected in time to measure it alone; the whole process (local AWS and client included) grew %.0f bytes per user (%.2f KiB; target at most 4 KiB for the middleware).\n",
			r.MemUsers, r.ProcessHeapPerUser, r.ProcessHeapPerUser/1024)
	}
	if ch := r.byName("churn"); ch != nil {
		fmt.Fprintf(&b, "- churn: %d users through a bound of %d: %d evictions, %d held at the end; the live heap grew %s MiB while the first %d users were cached",
			ch.Users, c.churnBound, r.ChurnEvictions, r.ChurnHeld, mib(uint64(max(r.ChurnAtBound, 0))), c.churnBound)
		if more := ch.Users - c.churnBound; more > 0 {
			fmt.Fprintf(&b, ", then %.0f bytes per further user passing through (%+.1f MiB over %d users)",
				float64(r.ChurnAtEnd-r.ChurnAtBound)/float64(more), float64(r.ChurnAtEnd-r.ChurnAtBound)/(1<<20), more)
		}
		if r.ChurnAtBound > 0 && r.ChurnAtEnd > 0 {
			fmt.Fprintf(&b, "; end against bound: %.2fx (1.0x is flat)", float64(r.ChurnAtEnd)/float64(r.ChurnAtBound))
		}
		b.WriteString(".\n")
	}
	if rf := r.byName("refresh"); rf != nil {
		fmt.Fprintf(&b, "- refresh: the clock moved %d times (+11 min, +5 min, +11 min); %d renewals of which %d in the background ahead of expiry, %d exchanges.\n",
			r.RefreshMoves, rf.Renewals, r.RefreshBackground, rf.Exchanges)
	}
	for _, x := range r.Results {
		if x.FirstErr != "" {
			fmt.Fprintf(&b, "- %s: first error: %s\n", x.Name, x.FirstErr)
		}
	}
	if f := r.fleetMarkdown(); f != "" {
		b.WriteString("\n" + f)
	}
	return b.String()
}

// bar is one group of bars of the chart: a scenario's percentiles.
type bar struct {
	label              string
	p50, p90, p99, max time.Duration
}

// bars returns a group for every scenario the run measured: the
// single-server scenarios, then each fleet row (store, drive, replicas).
func (r *report) bars() []bar {
	var bars []bar
	for _, x := range r.Results {
		if x.Requests == 0 {
			continue
		}
		bars = append(bars, bar{strings.TrimSuffix(x.Name, " (no AWS latency)"), x.P50, x.P90, x.P99, x.Max})
	}
	for _, x := range r.Fleet {
		if x.Requests == 0 {
			continue
		}
		bars = append(bars, bar{fmt.Sprintf("%s %s x%d", x.Store, x.Name, x.Replicas),
			x.Percentile(50), x.Percentile(90), x.Percentile(99), x.Percentile(100)})
	}
	return bars
}

// svg returns a chart of the latency percentiles of each scenario the run
// measured: one group of bars (p50, p90, p99, max) per scenario, on a log
// scale; "" when it measured none.
func (r *report) svg() string {
	bars := r.bars()
	if len(bars) == 0 {
		return ""
	}
	const (
		left, right     = 60, 20
		top, bottom     = 30, 130
		plotH           = 300
		minMS, barWidth = 0.01, 12
		groupW          = 64
	)
	w := max(760, left+right+groupW*len(bars))
	h := top + plotH + bottom
	plotW := w - left - right
	names := []string{"p50", "p90", "p99", "max"}
	colors := []string{"#4e79a7", "#59a14f", "#f28e2b", "#e15759"}
	maxMS := 1.0
	for _, x := range bars {
		maxMS = max(maxMS, float64(x.max)/float64(time.Millisecond))
	}
	hi := math.Pow(10, math.Ceil(math.Log10(maxMS)))
	y := func(v float64) float64 {
		v = max(v, minMS)
		return top + plotH*(1-math.Log10(v/minMS)/math.Log10(hi/minMS))
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="13">tipkit load: latency per scenario (ms, log scale), AWS latency %v</text>`+"\n", left, r.Config.latency)
	for v := minMS; v <= hi*1.001; v *= 10 {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%g</text>`+"\n",
			left, w-right, y(v), y(v), left-6, y(v)+4, v)
	}
	base := float64(top + plotH)
	group := float64(plotW) / float64(len(bars))
	for i, x := range bars {
		vals := []time.Duration{x.p50, x.p90, x.p99, x.max}
		x0 := float64(left) + group*float64(i) + (group-float64(len(vals)*barWidth))/2
		for j, v := range vals {
			top := y(float64(v) / float64(time.Millisecond))
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%d" height="%.1f" fill="%s"><title>%s %s %s ms</title></rect>`+"\n",
				x0+float64(j*barWidth), top, barWidth-1, base-top, colors[j], html.EscapeString(x.label), names[j], ms(v))
		}
		cx := float64(left) + group*(float64(i)+0.5)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end" transform="rotate(-35 %.1f %.1f)">%s</text>`+"\n",
			cx, base+14, cx, base+14, html.EscapeString(x.label))
	}
	for j, n := range names {
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			left+j*70, h-22, colors[j], left+j*70+14, h-13, n)
	}
	b.WriteString("</svg>\n")
	return b.String()
}
