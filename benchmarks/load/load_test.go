package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestQuickRun runs the driver as CI does and checks what must hold
// whatever the machine: the herd costs exactly one exchange per user, and
// no scenario fails a request. It asserts no timing.
func TestQuickRun(t *testing.T) {
	out := t.TempDir()
	var table strings.Builder
	rep, err := run(context.Background(), []string{"-quick", "-out", out}, &table, io.Discard)
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
	for _, name := range []string{"load.md", "latency.svg"} {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || len(b) == 0 {
			t.Errorf("%s: %v (%d bytes)", name, err, len(b))
		}
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
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
