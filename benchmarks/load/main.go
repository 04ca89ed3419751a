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
// herd, memory, churn, refresh, fleet (several replicas sharing sessions
// through a redis-server it starts; -scenario picks some). Progress goes to stderr, a Markdown table
// to stdout; with -out DIR the table is also written to DIR/load.md, with
// an SVG chart of the latency percentiles of every scenario measured, the
// fleet's included, in DIR/latency.svg (not written when none was). Every
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
	"slices"
	"strconv"
	"strings"
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

	scenarios       map[string]bool // the steps to run, by name
	fleetUsers      int
	fleetPerUser    int
	fleetReplicas   []int
	restartReplicas int
	storeTimeout    time.Duration
}

// scenarioNames are the names -scenario takes, in the order they run;
// bare and warm run together.
var scenarioNames = []string{"bare", "warm", "herd", "memory", "churn", "refresh", "fleet"}

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
	fs.IntVar(&c.maxInFlight, "max-exchanges", 0, "Cache.MaxInFlight of the middleware (exchanges in flight for all users); 0 is its default (100)")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (servers, local AWS and clients) to this file")
	fs.StringVar(&c.memProfile, "memprofile", "", "write a heap profile, taken when the memory scenario's users are cached, to this file")
	fs.BoolVar(&c.quick, "quick", false, "a short run for CI: 300 ms scenarios and fewer users, unless set by their own flags (the herd stays 100x10)")
	fs.StringVar(&c.out, "out", "", "directory to write load.md and latency.svg to")
	scenarios := fs.String("scenario", "all", "comma-separated scenarios to run, of "+strings.Join(scenarioNames, ", ")+" (bare and warm run together), or all")
	fs.IntVar(&c.fleetUsers, "fleet-users", 200, "new users of the fleet herd, and users served during the rolling restart")
	fs.IntVar(&c.fleetPerUser, "fleet-concurrency", 6, "concurrent first requests of each fleet herd user, spread over the replicas")
	replicas := fs.String("fleet-replicas", "1,3,6", "comma-separated replica counts of the fleet herd")
	fs.IntVar(&c.restartReplicas, "restart-replicas", 3, "replicas of the fleet's rolling restart")
	fs.DurationVar(&c.storeTimeout, "store-timeout", 0, "the Store Timeout of the fleet's replicas; 0 is each store's default (redisstore 100ms, dynamostore 1s)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var err error
	if c.scenarios, err = parseScenarios(*scenarios); err != nil {
		return c, err
	}
	if c.fleetReplicas, err = parseCounts(*replicas); err != nil {
		return c, fmt.Errorf("-fleet-replicas: %w", err)
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
		quick("fleet-users", &c.fleetUsers, 50)
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
	case c.fleetUsers <= 0 || c.fleetPerUser <= 0 || c.restartReplicas <= 0:
		return c, errors.New("-fleet-users, -fleet-concurrency and -restart-replicas must be positive")
	case c.storeTimeout < 0:
		return c, errors.New("-store-timeout must not be negative")
	}
	return c, nil
}

// parseScenarios reads -scenario.
func parseScenarios(v string) (map[string]bool, error) {
	m := map[string]bool{}
	for name := range strings.SplitSeq(v, ",") {
		switch name = strings.TrimSpace(name); {
		case name == "all":
			for _, n := range scenarioNames {
				m[n] = true
			}
		case slices.Contains(scenarioNames, name):
			m[name] = true
		default:
			return nil, fmt.Errorf("-scenario: unknown scenario %q (known: %s, all)", name, strings.Join(scenarioNames, ", "))
		}
	}
	if m["bare"] || m["warm"] {
		m["bare"], m["warm"] = true, true
	}
	return m, nil
}

// parseCounts reads a comma-separated list of positive counts.
func parseCounts(v string) ([]int, error) {
	var counts []int
	for f := range strings.SplitSeq(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive count", f)
		}
		counts = append(counts, n)
	}
	return counts, nil
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
	steps := []struct {
		name string
		run  func(context.Context, *report) error
	}{{"warm", d.steady}, {"herd", d.herd}, {"memory", d.memory}, {"churn", d.churn}, {"refresh", d.refresh}, {"fleet", d.fleetRun}}
	for _, step := range steps {
		if !c.scenarios[step.name] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := step.run(ctx, rep); err != nil {
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
		wrote := []string{filepath.Join(c.out, "load.md")}
		if chart := rep.svg(); chart != "" { // no chart when no scenario measured latencies
			if err := os.WriteFile(filepath.Join(c.out, "latency.svg"), []byte(chart), 0o644); err != nil {
				return nil, err
			}
			wrote = append(wrote, filepath.Join(c.out, "latency.svg"))
		}
		fmt.Fprintf(stderr, "wrote %s\n", strings.Join(wrote, " and "))
	}
	return rep, nil
}
