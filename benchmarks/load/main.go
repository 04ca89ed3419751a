// Command load drives tipkit's middleware with real HTTP over loopback and
// reports what it costs: throughput and latency against a bare server, AWS
// calls and exchanges per user, and heap per cached user.
//
// Run it from the benchmarks module:
//
//	cd benchmarks && go run ./load [-quick] [-out DIR]
//
// It starts a local identity provider and a local AWS (tiptest) with an
// added latency per AWS call, a server with the middleware and a bare
// server, all on 127.0.0.1, and runs the scenarios in order: bare, warm,
// herd, memory, churn, refresh. Progress goes to stderr, a Markdown table
// to stdout; with -out DIR the table is also written to DIR/load.md, with
// an SVG chart of the latency percentiles in DIR/latency.svg. Every
// scenario is bounded by -duration and -requests.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if _, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return // -h: the usage is printed, nothing failed
		}
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

// config holds the flags of a run.
type config struct {
	latency     time.Duration
	duration    time.Duration
	requests    int
	concurrency int
	alg         string
	warmUsers   int
	herdUsers   int
	herdPerUser int
	churnUsers  int
	churnBound  int
	memUsers    int
	maxInFlight int
	cpuProfile  string
	memProfile  string
	quick       bool
	out         string
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&c.latency, "latency", 25*time.Millisecond, "added latency of each AWS call (CreateTokenWithIAM, AssumeRole, AssumeRoleWithWebIdentity)")
	fs.DurationVar(&c.duration, "duration", 3*time.Second, "longest time of each timed scenario (bare, warm, refresh)")
	fs.IntVar(&c.requests, "requests", 200_000, "most requests of each timed scenario")
	fs.IntVar(&c.concurrency, "concurrency", 16, "concurrent clients of the steady scenarios")
	fs.StringVar(&c.alg, "alg", "RS256", "signature algorithm of the tokens: RS256, ES256 or EdDSA")
	fs.IntVar(&c.warmUsers, "warm-users", 100, "users of the warm, bare and refresh scenarios")
	fs.IntVar(&c.herdUsers, "herd-users", 100, "new users of the cold herd")
	fs.IntVar(&c.herdPerUser, "herd-concurrency", 10, "concurrent first requests of each herd user")
	fs.IntVar(&c.churnBound, "churn-bound", 500, "MaxUsers of the churn scenario")
	fs.IntVar(&c.churnUsers, "churn-users", 2_500, "users passing through the churn scenario's bound")
	fs.IntVar(&c.memUsers, "mem-users", 10_000, "users cached when measuring heap per user")
	fs.IntVar(&c.maxInFlight, "max-exchanges", 0, "MaxExchangesInFlight of the middleware; 0 is its default (32)")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (servers, local AWS and clients) to this file")
	fs.StringVar(&c.memProfile, "memprofile", "", "write a heap profile, taken when the memory scenario's users are cached, to this file")
	fs.BoolVar(&c.quick, "quick", false, "a short run for CI: 300 ms scenarios and fewer users, unless set by their own flags (the herd stays 100x10)")
	fs.StringVar(&c.out, "out", "", "directory to write load.md and latency.svg to")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		quick := func(name string, v *int, q int) {
			if !set[name] {
				*v = min(*v, q)
			}
		}
		if !set["duration"] {
			c.duration = min(c.duration, 300*time.Millisecond)
		}
		quick("requests", &c.requests, 5_000)
		quick("warm-users", &c.warmUsers, 20)
		quick("churn-bound", &c.churnBound, 50)
		quick("churn-users", &c.churnUsers, 150)
		quick("mem-users", &c.memUsers, 300)
	}
	if c.memProfile != "" {
		runtime.MemProfileRate = 512
	}
	switch {
	case c.duration <= 0 || c.requests <= 0 || c.concurrency <= 0:
		return c, errors.New("-duration, -requests and -concurrency must be positive")
	case c.warmUsers <= 0 || c.herdUsers <= 0 || c.herdPerUser <= 0 || c.memUsers <= 0:
		return c, errors.New("user counts must be positive")
	case c.churnBound <= 0 || c.churnUsers <= c.churnBound:
		return c, errors.New("-churn-users must be more than -churn-bound, which must be positive")
	case c.latency < 0 || c.maxInFlight < 0:
		return c, errors.New("-latency and -max-exchanges must not be negative")
	}
	return c, nil
}

// run parses args, runs every scenario and writes the report.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (*report, error) {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return nil, err
	}
	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	d, err := newDriver(c, stderr)
	if err != nil {
		return nil, err
	}
	defer d.close()
	rep := &report{
		Started: time.Now(), Config: c,
		Machine: fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version()),
	}
	steps := []func(context.Context, *report) error{d.steady, d.herd, d.memory, d.churn, d.refresh}
	for _, step := range steps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := step(ctx, rep); err != nil {
			return nil, err
		}
	}
	rep.Took = time.Since(rep.Started)
	table := rep.markdown()
	if _, err := io.WriteString(stdout, table); err != nil {
		return nil, err
	}
	if c.out != "" {
		if err := os.MkdirAll(c.out, 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(c.out, "load.md"), []byte(table), 0o644); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(c.out, "latency.svg"), []byte(rep.svg()), 0o644); err != nil {
			return nil, err
		}
		fmt.Fprintf(stderr, "wrote %s and %s\n", filepath.Join(c.out, "load.md"), filepath.Join(c.out, "latency.svg"))
	}
	return rep, nil
}
