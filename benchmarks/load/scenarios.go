package main

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/tipkit/tipkit/benchmarks/internal/fixture"
	"github.com/tipkit/tipkit/middleware"
)

// result is one row of the report.
type result struct {
	Name      string
	Requests  int
	Errors    int
	FirstErr  string
	Elapsed   time.Duration
	P50, P90  time.Duration
	P99, Max  time.Duration
	AWSCalls  int // during the measured part
	Users     int
	Exchanges uint64 // by the middleware, warm-up included
	Renewals  uint64
	PeakHeap  uint64
}

func (r *result) reqPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// record turns a load into a result.
func (d *driver) record(name string, l *load, awsCalls, users int, st *middleware.Stats) result {
	r := result{
		Name: name, Requests: len(l.lat), Errors: l.errs, Elapsed: l.elapsed,
		P50: percentile(l.lat, 50), P90: percentile(l.lat, 90), P99: percentile(l.lat, 99), Max: percentile(l.lat, 100),
		AWSCalls: awsCalls, Users: users, PeakHeap: d.peak.Load(),
	}
	if l.first != nil {
		r.FirstErr = l.first.Error()
	}
	if st != nil {
		r.Exchanges, r.Renewals = st.Exchanges, st.Renewals
	}
	d.progress("%s: %d requests, %d errors, %.0f req/s, p50 %v p99 %v", name, r.Requests, r.Errors, r.reqPerSec(), r.P50, r.P99)
	return r
}

// steady drives a bare server and the middleware, once every warm user's
// credentials are held, with the same requests. Both run in alternating
// slices (bare, warm, warm, bare, bare, warm), so that the machine's drift
// over a run weighs on both alike; each result adds up its slices.
func (d *driver) steady(ctx context.Context, rep *report) error {
	d.warmToks = d.mint("warm", d.c.warmUsers)
	bare, err := d.startServer(true, nil)
	if err != nil {
		return err
	}
	defer bare.close()
	warm, err := d.startServer(false, nil)
	if err != nil {
		return err
	}
	defer warm.close()
	for _, s := range []*server{bare, warm} {
		if err := d.warmUp(ctx, s.url, d.warmToks, d.c.concurrency); err != nil {
			return err
		}
	}
	const parts = 6
	calls := fixture.AWSCalls(d.env)
	d.resetPeak()
	var lb, lw load
	slice := func(name, url string) *load {
		return d.drive(ctx, name, url, d.c.concurrency, d.c.requests/parts, d.c.duration/parts, d.tokenOf(d.warmToks), nil)
	}
	for i := range parts / 2 {
		if i%2 == 0 { // bare first, then warm first: neither always goes first
			lb.add(slice("bare", bare.url))
			lw.add(slice("warm", warm.url))
		} else {
			lw.add(slice("warm", warm.url))
			lb.add(slice("bare", bare.url))
		}
	}
	sortLoad(&lb)
	sortLoad(&lw)
	st := warm.mw.Stats()
	rep.Results = append(rep.Results,
		d.record("bare", &lb, 0, d.c.warmUsers, nil),
		d.record("warm", &lw, fixture.AWSCalls(d.env)-calls, d.c.warmUsers, &st))
	return nil
}

func (d *driver) tokenOf(toks []string) func(int) string {
	return func(i int) string { return toks[i%len(toks)] }
}

// herd sends the first requests of many new users at once: herdPerUser
// concurrent requests each, so that each user's exchange is asked for
// several times at the same moment.
func (d *driver) herd(ctx context.Context, rep *report) error {
	s, err := d.startServer(false, nil)
	if err != nil {
		return err
	}
	defer s.close()
	// The first request fetches the key set and assumes the application
	// role; the next ones each cost one exchange, the reference.
	probes := d.mint("probe", 4)
	if err := d.warmUp(ctx, s.url, probes[:1], 1); err != nil {
		return err
	}
	var one []time.Duration
	for _, tok := range probes[1:] {
		took, err := d.get(ctx, s.url, tok)
		if err != nil {
			return fmt.Errorf("herd reference: %w", err)
		}
		one = append(one, took)
	}
	rep.OneExchange = min(one[0], one[1], one[2])

	users := d.mint("herd", d.c.herdUsers)
	toks := make([]string, 0, len(users)*d.c.herdPerUser)
	for range d.c.herdPerUser {
		toks = append(toks, users...)
	}
	// The herd is of new users, not of new connections: 1,000 connections
	// opened at once cost about as much as the exchanges themselves on
	// loopback, middleware or not, so they are opened first.
	if err := d.openConns(ctx, s.url, len(toks)); err != nil {
		return err
	}
	before := s.mw.Stats()
	calls := fixture.AWSCalls(d.env)
	d.resetPeak()
	d.progress("herd: %d users x %d concurrent requests", d.c.herdUsers, d.c.herdPerUser)
	l := d.burst(ctx, s.url, toks)
	st := s.mw.Stats()
	st.Exchanges -= before.Exchanges
	st.Renewals -= before.Renewals
	rep.HerdMerged = st.Joined - before.Joined
	rep.Results = append(rep.Results, d.record("herd", l, fixture.AWSCalls(d.env)-calls, d.c.herdUsers, &st))
	return nil
}

// memory caches memUsers users (with no AWS latency: it changes nothing
// but the time taken) and measures the heap the middleware holds for them:
// the live heap with the middleware, less the live heap once it is gone.
func (d *driver) memory(ctx context.Context, rep *report) error {
	fixture.SetLatency(d.env, 0)
	defer fixture.SetLatency(d.env, d.c.latency)
	toks := d.mint("mem", d.c.memUsers)
	s, err := d.startServer(false, func(o *middleware.Options) { o.Cache.MaxUsers = max(d.c.memUsers, 10_000) })
	if err != nil {
		return err
	}
	calls := fixture.AWSCalls(d.env)
	before := liveHeap()
	d.resetPeak()
	l := d.drive(ctx, "memory", s.url, d.c.concurrency, len(toks), time.Hour, d.tokenOf(toks), nil)
	st := s.mw.Stats()
	res := d.record("memory (no AWS latency)", l, fixture.AWSCalls(d.env)-calls, d.c.memUsers, &st)
	l = nil
	with := liveHeap()
	if err := d.writeHeapProfile(); err != nil {
		return err
	}
	gone := make(chan struct{})
	runtime.AddCleanup(s.mw, func(gone chan struct{}) { close(gone) }, gone)
	s.close()
	s = nil
	d.client.CloseIdleConnections()
	// The middleware's memory is what the heap loses once it is
	// collected: wait for that (its background goroutines end after
	// Close), or report only the whole process's growth.
	collected := false
	for i := 0; i < 50 && !collected; i++ {
		runtime.GC()
		select {
		case <-gone:
			collected = true
		case <-time.After(20 * time.Millisecond):
		}
	}
	without := liveHeap()
	rep.Results = append(rep.Results, res)
	rep.MemUsers = st.Users
	if collected && st.Users > 0 && with > without {
		rep.HeapPerUser = float64(with-without) / float64(st.Users)
	}
	if with > before {
		rep.ProcessHeapPerUser = float64(with-before) / float64(d.c.memUsers)
	}
	d.progress("memory: %d users cached, %.0f bytes each (%.0f for the whole process)", st.Users, rep.HeapPerUser, rep.ProcessHeapPerUser)
	return nil
}

// churn drives churnUsers users, two requests each, through a middleware
// whose MaxUsers is churnBound, and measures whether the heap stays flat:
// the live heap once the first churnBound users are cached, against the
// live heap once all have passed through (the same server, tiptest and
// client included in both, so their small per-user records count against
// flatness too).
func (d *driver) churn(ctx context.Context, rep *report) error {
	toks := d.mint("churn", d.c.churnUsers)
	s, err := d.startServer(false, func(o *middleware.Options) { o.Cache.MaxUsers = d.c.churnBound })
	if err != nil {
		return err
	}
	defer s.close()
	calls := fixture.AWSCalls(d.env)
	d.resetPeak()
	dur := max(10*d.c.duration, time.Minute)
	first := min(d.c.churnBound, len(toks))
	before := liveHeap()
	l := d.drive(ctx, "churn", s.url, d.c.concurrency, 2*first, dur, func(i int) string { return toks[i/2] }, nil)
	atBound := liveHeap()
	rest := d.drive(ctx, "churn", s.url, d.c.concurrency, 2*(len(toks)-first), dur, func(i int) string { return toks[first+i/2] }, nil)
	atEnd := liveHeap()
	l.add(rest)
	sortLoad(l)
	st := s.mw.Stats()
	rep.Results = append(rep.Results, d.record("churn", l, fixture.AWSCalls(d.env)-calls, d.c.churnUsers, &st))
	rep.ChurnEvictions = st.Evictions
	rep.ChurnHeld = st.Users
	rep.ChurnAtBound = int64(atBound) - int64(before)
	rep.ChurnAtEnd = int64(atEnd) - int64(before)
	return nil
}

// refresh drives warm users while the clock moves: at a quarter of the run
// into the refresh window (+11 min of 15-minute credentials), at half a
// little further (+5 min), at three quarters past the renewed credentials'
// expiry (+11 min), where requests wait for a renewal.
func (d *driver) refresh(ctx context.Context, rep *report) error {
	toks := d.mint("refresh", d.c.warmUsers)
	s, err := d.startServer(false, nil)
	if err != nil {
		return err
	}
	defer s.close()
	if err := d.warmUp(ctx, s.url, toks, d.c.concurrency); err != nil {
		return err
	}
	before := s.mw.Stats()
	calls := fixture.AWSCalls(d.env)
	steps := []time.Duration{11 * time.Minute, 5 * time.Minute, 11 * time.Minute}
	stage := 0
	var moved []time.Duration
	tick := func(done float64) {
		for stage < len(steps) && done >= float64(stage+1)/4 {
			d.env.Clock.Advance(steps[stage])
			moved = append(moved, steps[stage])
			d.progress("refresh: clock moved %v", steps[stage])
			stage++
		}
	}
	d.resetPeak()
	l := d.drive(ctx, "refresh", s.url, d.c.concurrency, d.c.requests, d.c.duration, d.tokenOf(toks), tick)
	st := s.mw.Stats()
	st.Exchanges -= before.Exchanges
	st.Renewals -= before.Renewals
	rep.RefreshBackground = st.BackgroundRefreshes - before.BackgroundRefreshes
	rep.RefreshMoves = len(moved)
	rep.Results = append(rep.Results, d.record("refresh", l, fixture.AWSCalls(d.env)-calls, d.c.warmUsers, &st))
	return nil
}
