package redistest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestStartStopRestart(t *testing.T) {
	s := Start(t)
	c := s.Client()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET = %q, %v; want v", got, err)
	}

	s.Stop()
	s.Stop() // stopping a stopped server does nothing
	if ping(ctx, s.Addr()) {
		t.Fatal("PING answered while the server was stopped")
	}

	addr := s.Addr()
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(ctx); err != nil { // restarting a running server does nothing
		t.Fatal(err)
	}
	if s.Addr() != addr {
		t.Fatalf("Addr after Restart = %s, want %s", s.Addr(), addr)
	}
	// Restart returned once the server answered: the client's next call
	// is answered (go-redis replaces the connection the stop closed).
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
	if n, err := c.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS k after a restart = %d, %v; want 0 (no persistence)", n, err)
	}
}

// Close stops the server, closes its clients, removes its directory, and
// is final.
func TestClose(t *testing.T) {
	s, err := Run(context.Background())
	if errors.Is(err, ErrNotInstalled) {
		Start(t) // skips, or fails with TIPKIT_REQUIRE_REDIS=1
	}
	if err != nil {
		t.Fatal(err)
	}
	c := s.Client()
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close() // closing again does nothing
	if err := c.Ping(context.Background()).Err(); !errors.Is(err, redis.ErrClosed) {
		t.Fatalf("PING on a client of a closed server: %v, want redis.ErrClosed", err)
	}
	if ping(context.Background(), s.Addr()) {
		t.Fatal("PONG after Close")
	}
	if _, err := os.Stat(s.dir); !os.IsNotExist(err) {
		t.Fatalf("directory %s left behind: %v", s.dir, err)
	}
	if err := s.Restart(context.Background()); err == nil {
		t.Fatal("Restart after Close: no error")
	}
}

// A cancelled context ends Run's wait.
func TestRunCancelled(t *testing.T) {
	Start(t).Close() // skips without redis-server
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if s, err := Run(ctx); !errors.Is(err, context.Canceled) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("Run with a cancelled context: %v, want context.Canceled", err)
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
