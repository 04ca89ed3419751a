package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tipkit/tipkit/benchmarks/internal/fixture"
	"github.com/tipkit/tipkit/ctxcreds"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/tiptest"
)

// driver holds what the scenarios share: the local IdP and AWS, the HTTP
// client, and the heap sampler.
type driver struct {
	c      config
	log    io.Writer
	env    *tiptest.Env
	client *http.Client

	warmToks []string // the warm users' tokens, minted by the bare scenario

	peak       atomic.Uint64 // highest heap seen since resetPeak
	stopSample chan struct{}
	sampled    sync.WaitGroup
}

func newDriver(c config, log io.Writer) (*driver, error) {
	env, err := tiptest.NewEnv()
	if err != nil {
		return nil, err
	}
	fixture.SetLatency(env, c.latency)
	conns := max(c.concurrency, c.herdUsers*c.herdPerUser)
	d := &driver{
		c: c, log: log, env: env,
		client: &http.Client{
			Timeout: time.Minute,
			Transport: &http.Transport{
				Proxy:               nil, // loopback only, whatever the environment says
				MaxIdleConns:        conns,
				MaxIdleConnsPerHost: conns,
				IdleConnTimeout:     30 * time.Second,
				DisableCompression:  true,
			},
		},
		stopSample: make(chan struct{}),
	}
	d.sampled.Add(1)
	go d.sampleHeap()
	return d, nil
}

func (d *driver) close() {
	close(d.stopSample)
	d.sampled.Wait()
	d.client.CloseIdleConnections()
	_ = d.env.Close()
}

func (d *driver) progress(format string, args ...any) {
	fmt.Fprintf(d.log, "load: "+format+"\n", args...)
}

// heapObjects is the live and not yet swept heap, read without stopping
// the world.
const heapObjects = "/memory/classes/heap/objects:bytes"

func (d *driver) sampleHeap() {
	defer d.sampled.Done()
	s := []metrics.Sample{{Name: heapObjects}}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		metrics.Read(s)
		if v := s[0].Value.Uint64(); v > d.peak.Load() {
			d.peak.Store(v)
		}
		select {
		case <-t.C:
		case <-d.stopSample:
			return
		}
	}
}

func (d *driver) resetPeak() { d.peak.Store(0) }

// liveHeap returns the heap in use after two collections.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// server is an HTTP server on 127.0.0.1.
type server struct {
	url string
	srv *http.Server
	mw  *middleware.Middleware
}

// okHandler answers 200 "ok", and 500 when it runs behind the middleware
// without the caller's AWS configuration.
func okHandler(needCreds bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if needCreds {
			if _, ok := ctxcreds.Config(r.Context()); !ok {
				http.Error(w, "no AWS configuration", http.StatusInternalServerError)
				return
			}
		}
		_, _ = io.WriteString(w, "ok\n")
	})
}

// startServer serves the ok handler, behind a new middleware with edit
// applied to its options unless bare.
func (d *driver) startServer(bare bool, edit func(*middleware.Options)) (*server, error) {
	s := &server{}
	h := okHandler(!bare)
	if !bare {
		m, err := fixture.New(d.env, func(o *middleware.Options) {
			o.Cache.MaxInFlight = d.c.maxInFlight
			if edit != nil {
				edit(o)
			}
		})
		if err != nil {
			return nil, err
		}
		s.mw, h = m, m.Handler(h)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.url = "http://" + ln.Addr().String() + "/"
	s.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *server) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	if s.mw != nil {
		_ = s.mw.Close()
	}
}

// get sends one request with token and returns its latency; an answer
// other than 200 is an error.
func (d *driver) get(ctx context.Context, url, token string) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	start := time.Now()
	resp, err := d.client.Do(req)
	if err != nil {
		return time.Since(start), err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	took := time.Since(start)
	if resp.StatusCode != http.StatusOK {
		return took, fmt.Errorf("answered %s", resp.Status)
	}
	return took, nil
}

// openConns leaves n idle keep-alive connections to url in the client's
// pool, by sending n concurrent requests without a token (answered 401
// without any work).
func (d *driver) openConns(ctx context.Context, url string, n int) error {
	var (
		wg    sync.WaitGroup
		gate  = make(chan struct{})
		errMu sync.Mutex
		first error
	)
	for range n {
		wg.Go(func() {
			<-gate
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err == nil {
				var resp *http.Response
				if resp, err = d.client.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					if resp.StatusCode != http.StatusUnauthorized {
						err = fmt.Errorf("opening connections: answered %s", resp.Status)
					}
				}
			}
			if err != nil {
				errMu.Lock()
				first = cmp.Or(first, err)
				errMu.Unlock()
			}
		})
	}
	close(gate)
	wg.Wait()
	return first
}

// sortLoad sorts l's latencies, as percentiles need.
func sortLoad(l *load) { slices.Sort(l.lat) }

// load is the outcome of driving a server.
type load struct {
	lat     []time.Duration // sorted
	errs    int
	elapsed time.Duration
	first   error
}

// add adds o, a load driven after l, to l; sortLoad must follow before
// percentiles are read.
func (l *load) add(o *load) {
	l.lat = append(l.lat, o.lat...)
	l.elapsed += o.elapsed
	l.errs += o.errs
	if l.first == nil {
		l.first = o.first
	}
}

// drive sends requests from conc clients until limit requests are sent or
// dur has passed; request i carries tokenOf(i). tick, when set, runs every
// 100 ms (more often when dur is under 4 s) with the part of the run done,
// from 0 to 1: the larger of time and requests.
func (d *driver) drive(ctx context.Context, name, url string, conc, limit int, dur time.Duration, tokenOf func(int) string, tick func(float64)) *load {
	ctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	var (
		next atomic.Int64
		mu   sync.Mutex
		all  = &load{}
		wg   sync.WaitGroup
	)
	start := time.Now()
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(min(100*time.Millisecond, max(dur/40, 5*time.Millisecond)))
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if tick != nil {
					tick(max(float64(time.Since(start))/float64(dur), float64(next.Load())/float64(limit)))
				}
				if time.Since(last) >= time.Second {
					last = time.Now()
					d.progress("%s: %d requests, %.0fs", name, min(int(next.Load()), limit), time.Since(start).Seconds())
				}
			}
		}
	}()
	for range conc {
		wg.Go(func() {
			own := &load{lat: make([]time.Duration, 0, 1024)}
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= limit {
					break
				}
				took, err := d.get(context.WithoutCancel(ctx), url, tokenOf(i))
				if err != nil {
					own.errs++
					if own.first == nil {
						own.first = err
					}
				}
				own.lat = append(own.lat, took)
			}
			mu.Lock()
			all.add(own)
			mu.Unlock()
		})
	}
	wg.Wait()
	close(done)
	all.elapsed = time.Since(start)
	slices.Sort(all.lat)
	return all
}

// burst sends one request per token, all at once, and waits for them.
func (d *driver) burst(ctx context.Context, url string, tokens []string) *load {
	var (
		mu    sync.Mutex
		all   = &load{}
		wg    sync.WaitGroup
		ready sync.WaitGroup
		gate  = make(chan struct{})
	)
	ready.Add(len(tokens))
	for _, tok := range tokens {
		wg.Go(func() {
			ready.Done()
			<-gate
			took, err := d.get(ctx, url, tok)
			mu.Lock()
			defer mu.Unlock()
			all.lat = append(all.lat, took)
			if err != nil {
				all.errs++
				if all.first == nil {
					all.first = err
				}
			}
		})
	}
	ready.Wait()
	start := time.Now()
	close(gate)
	wg.Wait()
	all.elapsed = time.Since(start)
	slices.Sort(all.lat)
	return all
}

// warmUp sends one request per token through url, conc at a time, and
// fails on any error.
func (d *driver) warmUp(ctx context.Context, url string, tokens []string, conc int) error {
	l := d.drive(ctx, "warm-up", url, conc, len(tokens), time.Hour, func(i int) string { return tokens[i] }, nil)
	if l.errs > 0 {
		return fmt.Errorf("warm-up: %d of %d requests failed, first: %w", l.errs, len(tokens), l.first)
	}
	if len(l.lat) != len(tokens) {
		return errors.New("warm-up cut short")
	}
	return nil
}

// mint returns n tokens of users group0..group(n-1).
func (d *driver) mint(group string, n int) []string {
	start := time.Now()
	toks := fixture.Mint(d.env, n, d.c.alg, func(i int) string { return fixture.User(group, i) })
	if n >= 500 {
		d.progress("minted %d %s tokens in %.1fs", n, d.c.alg, time.Since(start).Seconds())
	}
	return toks
}

// writeHeapProfile writes the heap profile asked for with -memprofile.
func (d *driver) writeHeapProfile() error {
	if d.c.memProfile == "" {
		return nil
	}
	f, err := os.Create(d.c.memProfile)
	if err != nil {
		return err
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
