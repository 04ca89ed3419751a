package redistest

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
)

func TestStartStopStart(t *testing.T) {
	s := Start(t)
	c := s.Client(t)
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET = %q, %v; want v", got, err)
	}

	s.Stop()
	s.Stop() // stopping a stopped server does nothing
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	err := c.Ping(short).Err()
	cancel()
	if err == nil {
		t.Fatal("PING answered while the server was stopped")
	}

	addr := s.Addr()
	s.Start()
	s.Start() // starting a running server does nothing
	if s.Addr() != addr {
		t.Fatalf("Addr after Start = %s, want %s", s.Addr(), addr)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := c.Ping(ctx).Err()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("PING after Start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n, err := c.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS k after a restart = %d, %v; want 0 (no persistence)", n, err)
	}
}

func TestFlushAll(t *testing.T) {
	s := Start(t)
	c := s.Client(t)
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	s.FlushAll()
	if n, err := c.DBSize(ctx).Result(); err != nil || n != 0 {
		t.Fatalf("DBSIZE after FlushAll = %d, %v; want 0", n, err)
	}
}

func TestTwoServers(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Addr() == b.Addr() {
		t.Fatalf("two servers on one address %s", a.Addr())
	}
}

// recorder is a testing.TB that records Skip and Fatal and ends its
// goroutine on them.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Skip(args ...any) {
	r.skipped = fmt.Sprint(args...)
	runtime.Goexit()
}

func (r *recorder) Fatal(args ...any) {
	r.failed = fmt.Sprint(args...)
	runtime.Goexit()
}

func startWithout(t *testing.T) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(r)
	}()
	<-done
	return r
}

func TestNotInstalled(t *testing.T) {
	t.Setenv("PATH", t.TempDir())

	t.Setenv(RequireEnv, "")
	r := startWithout(t)
	if r.skipped == "" || r.failed != "" {
		t.Fatalf("without redis-server: skipped %q, failed %q; want a skip", r.skipped, r.failed)
	}

	t.Setenv(RequireEnv, "1")
	r = startWithout(t)
	if r.failed == "" || r.skipped != "" {
		t.Fatalf("without redis-server and %s=1: skipped %q, failed %q; want a failure", RequireEnv, r.skipped, r.failed)
	}
}
