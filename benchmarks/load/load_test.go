package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tipkit/tipkit/benchmarks/internal/fleet"
)

// TestQuickRun runs the driver as CI does and checks what must hold
// whatever the machine: the herd costs exactly one exchange per user, the
// fleet herd one CreateTokenWithIAM and one AssumeRole per user whatever
// the replicas, a rolling restart none, and no scenario fails a request.
// It asserts no timing. The fleet's Store timeout is 10 s: under the race
// detector on two cores, Redis calls of a herd wait for a CPU far longer
// than the default 100 ms, and replicas that give up on Redis work alone
// (the outage case, not the one checked here).
func TestQuickRun(t *testing.T) {
	out := t.TempDir()
	var table strings.Builder
	rep, err := run(context.Background(), []string{"-quick", "-out", out, "-store-timeout", "10s"}, &table, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	herd := rep.byName("herd")
	if herd == nil {
		t.Fatal("no herd result")
	}
	if herd.Exchanges != uint64(rep.Config.herdUsers) {
		t.Errorf("herd of %d users made %d exchanges", rep.Config.herdUsers, herd.Exchanges)
	}
	if want := rep.Config.herdUsers * rep.Config.herdPerUser; herd.Requests != want {
		t.Errorf("herd sent %d requests, want %d", herd.Requests, want)
	}
	for _, r := range rep.Results {
		if r.Errors != 0 {
			t.Errorf("%s: %d errors, first: %s", r.Name, r.Errors, r.FirstErr)
		}
		if r.Requests == 0 {
			t.Errorf("%s: no request", r.Name)
		}
	}
	if w := rep.byName("warm"); w != nil && w.AWSCalls != 0 {
		t.Errorf("warm steady state called AWS %d times", w.AWSCalls)
	}
	if rf := rep.byName("refresh"); rf == nil || rf.Renewals == 0 || rep.RefreshMoves != 3 {
		t.Errorf("refresh: %+v, %d clock moves", rf, rep.RefreshMoves)
	}
	if !strings.Contains(table.String(), "| herd |") {
		t.Errorf("no herd row in the table:\n%s", table.String())
	}
	checkFleet(t, rep, table.String())
	for _, name := range []string{"load.md", "latency.svg"} {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || len(b) == 0 {
			t.Errorf("%s: %v (%d bytes)", name, err, len(b))
		}
	}
}

// checkFleet checks the fleet scenario's counts on each store that ran
// (a store whose engine is missing is left out; the run failed instead if
// its TIPKIT_REQUIRE_ variable is 1).
func checkFleet(t *testing.T, rep *report, table string) {
	t.Helper()
	for _, why := range rep.FleetSkipped {
		t.Logf("fleet: %s", why)
	}
	c := rep.Config
	ran := map[string]int{}
	for _, f := range rep.Fleet {
		ran[f.Store]++
		want := c.fleetUsers // herd: one exchange per user
		if f.Name != "herd" {
			want = 0
		}
		if f.Non200 != 0 || f.CreateTokenWithIAM != want || f.AssumeRole != want || f.Requests == 0 {
			t.Errorf("fleet on %s, %s, %d replicas: %d requests, %s non-200 (first: %s), %d CreateTokenWithIAM, %d AssumeRole; want 0 non-200, %d and %d",
				f.Store, f.Name, f.Replicas, f.Requests, f.Non200String(), f.FirstErr, f.CreateTokenWithIAM, f.AssumeRole, want, want)
		}
		if f.Name == "cold start" && (f.Requests != c.fleetUsers || int(f.Stats.SharedHits) != c.fleetUsers) {
			t.Errorf("fleet on %s, cold start, %d replicas: %d requests, %d sessions from the store; want %d and %d",
				f.Store, f.Replicas, f.Requests, f.Stats.SharedHits, c.fleetUsers, c.fleetUsers)
		}
	}
	if len(ran)+len(rep.FleetSkipped) != len(fleetStores) {
		t.Errorf("fleet ran on %v and left out %q; want every one of %d stores", ran, rep.FleetSkipped, len(fleetStores))
	}
	for store, n := range ran {
		if want := 2*len(c.fleetReplicas) + 1; n != want {
			t.Errorf("fleet on %s: %d results, want %d", store, n, want)
		}
		if !strings.Contains(table, "| "+store+" | rolling restart | 3 |") {
			t.Errorf("no rolling restart row of %s in the table:\n%s", store, table)
		}
	}
	if os.Getenv("TIPKIT_REQUIRE_DYNALITE") == "1" && ran["dynamodb"] == 0 {
		t.Error("TIPKIT_REQUIRE_DYNALITE is 1 and the fleet did not run on dynamodb")
	}
}

func TestScenarioFlag(t *testing.T) {
	c, err := parseFlags([]string{"-scenario", "herd,fleet", "-fleet-replicas", "2,4"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !c.scenarios["herd"] || !c.scenarios["fleet"] || c.scenarios["warm"] || len(c.fleetReplicas) != 2 || c.fleetReplicas[1] != 4 {
		t.Errorf("config %+v", c)
	}
	c, err = parseFlags([]string{"-scenario", "bare"}, io.Discard)
	if err != nil || !c.scenarios["warm"] {
		t.Errorf("bare runs with warm: %v, %v", c.scenarios, err)
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-scenario", "nope"},
		{"-fleet-replicas", "3,0"},
		{"-store-timeout", "-1s"},
		{"-duration", "0"},
		{"-churn-users", "10", "-churn-bound", "10"},
		{"-latency", "-1s"},
		{"extra"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
	c, err := parseFlags([]string{"-quick", "-mem-users", "1000"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.memUsers != 1000 || c.churnUsers != 150 || c.herdUsers != 100 || c.herdPerUser != 10 {
		t.Errorf("quick config %+v", c)
	}
}

// TestChart: the chart has a group of bars for every scenario measured,
// the fleet's included, and there is no chart when nothing was measured.
func TestChart(t *testing.T) {
	if got := (&report{}).svg(); got != "" {
		t.Errorf("a run that measured nothing has a chart:\n%s", got)
	}
	rep := &report{Fleet: []fleetResult{
		{Store: "redis", Name: "herd", Replicas: 3, Outcome: fleet.Outcome{Requests: 2, Lat: []time.Duration{time.Millisecond, 2 * time.Millisecond}}},
		{Store: "dynamodb", Name: "cold start", Replicas: 6, Outcome: fleet.Outcome{Requests: 1, Lat: []time.Duration{3 * time.Millisecond}}},
	}}
	svg := rep.svg()
	if n := strings.Count(svg, "<title>"); n != 8 {
		t.Errorf("%d bars for 2 fleet scenarios, want 8:\n%s", n, svg)
	}
	for _, label := range []string{"redis herd x3", "dynamodb cold start x6"} {
		if !strings.Contains(svg, label) {
			t.Errorf("no %q in the chart", label)
		}
	}
}
