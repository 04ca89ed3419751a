package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tipkit/tipkit/examples/internal/demo"
)

// TestSelfTest runs the example's -selftest in-process: two users through
// the same server and role, each seeing only their own files.
func TestSelfTest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := selfTest(ctx, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"alice/notes.txt", "bob/plan.txt", "PermissionDenied", "Unauthenticated", "SERVING", "OK:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the self-test output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestRun checks the command line: -selftest exits 0, a bad flag 2, and
// an incomplete environment 2 before anything is served.
func TestRun(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-selftest"}, env(nil), &stdout, &stderr); code != demo.ExitOK {
		t.Errorf("-selftest: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	if code := run(context.Background(), []string{"-nope"}, env(nil), &stdout, &stderr); code != demo.ExitUsage {
		t.Errorf("a bad flag: exit %d, want %d", code, demo.ExitUsage)
	}
	stderr.Reset()
	if code := run(context.Background(), nil, env(map[string]string{demo.EnvIssuer: "https://idp.example.com"}), &stdout, &stderr); code != demo.ExitUsage ||
		!strings.Contains(stderr.String(), demo.EnvAudience) {
		t.Errorf("an incomplete environment: exit %d, %q", code, stderr.String())
	}
}

// TestServeLocal checks that local mode prints the grpcurl commands with
// both users' tokens and stops when its context is done.
func TestServeLocal(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr lockedBuffer
	done := make(chan int, 1)
	go func() { done <- serveLocal(ctx, "127.0.0.1:0", &stdout, &stderr) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stdout.String(), "Ctrl-C") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != demo.ExitOK {
		t.Errorf("exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{"ALICE='", "BOB='", "tipkit.examples.files.v1.Files/List", "grpc.health.v1.Health/Check"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the output lacks %q:\n%s", want, stdout.String())
		}
	}
}

// lockedBuffer is a bytes.Buffer that a server goroutine writes while the
// test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
