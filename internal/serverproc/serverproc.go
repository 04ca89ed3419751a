// Package serverproc runs the local servers of the test launchers
// redistest and dynamotest: a process on a free loopback port, killed
// with the program on Linux, ready once it answers, stopped on demand.
package serverproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Process is a running server process, started by [Start].
type Process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
}

// Start starts cmd, whose output it keeps for its errors, and returns once
// ready reports that it answers (polled every poll), or fails when the
// process exits first or when ctx ends (the process is then killed). name
// begins its errors ("redistest: redis-server"). On Linux the process, in
// a process group of its own, is killed when the program ends.
func Start(ctx context.Context, name string, port int, cmd *exec.Cmd, ready func(context.Context) bool, poll time.Duration) (*Process, error) {
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	detach(cmd)
	p := &Process{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// The thread that starts the process stays until the process
		// exits: on Linux the process is killed when that thread ends
		// (detach), which must be when the program ends, not before.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := cmd.Start()
		started <- err
		if err == nil {
			_ = cmd.Wait()
		}
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("%s: starting: %w", name, err)
	}
	for !ready(ctx) {
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s on port %d exited at start; its output:\n%s", name, port, out.String())
		case <-ctx.Done():
			p.Stop(0)
			return nil, fmt.Errorf("%s on port %d did not answer: %w; its output:\n%s", name, port, ctx.Err(), out.String())
		case <-time.After(poll):
		}
	}
	return p, nil
}

// Stop stops the process and returns once it has exited. With a grace
// period, it first asks the process to shut down, and kills it only when
// it has not exited by then; without, it kills it (its process group on
// Linux) at once.
func (p *Process) Stop(grace time.Duration) {
	if grace > 0 {
		_ = p.cmd.Process.Signal(terminate)
		select {
		case <-p.done:
			return
		case <-time.After(grace):
		}
	}
	kill(p.cmd)
	<-p.done
}

// OnFreePort calls start with a loopback TCP port that was free a moment
// ago, and again with another while start fails (another process may take
// a port between the probe and the server's bind), five times at most or
// until ctx ends. prefix begins its own errors.
func OnFreePort(ctx context.Context, prefix string, start func(port int) error) error {
	var err error
	for range 5 {
		var l net.Listener
		if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return fmt.Errorf("%s: no free port: %w", prefix, err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if err = start(port); err == nil || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// Require ends tb as a launcher's Start does when Run failed with err:
// it skips tb when the server is not installed (err is notInstalled),
// saying how to install it, unless the environment variable env is 1, as
// continuous integration sets it, which fails tb; any other error fails
// tb.
func Require(tb testing.TB, err, notInstalled error, env string) {
	tb.Helper()
	switch {
	case err == nil:
	case errors.Is(err, notInstalled) && os.Getenv(env) == "1":
		tb.Fatal(err.Error() + " (" + env + "=1)")
	case errors.Is(err, notInstalled):
		tb.Skip(err.Error())
	default:
		tb.Fatal(err.Error())
	}
}

// syncBuffer is a bytes.Buffer safe for the process's writes and the
// reads of an error message.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
