// Package redistest runs a real redis-server for tests: one call starts it
// on a free loopback port, without persistence, in its own temporary
// directory, and the test's cleanup stops it.
//
// When redis-server is not on PATH, [Start] skips the test, or fails it
// when the environment variable TIPKIT_REQUIRE_REDIS is 1 (as continuous
// integration sets it, so that a missing server cannot pass for a pass).
package redistest

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RequireEnv is the environment variable that, set to 1, makes [Start]
// fail a test rather than skip it when redis-server is not installed.
const RequireEnv = "TIPKIT_REQUIRE_REDIS"

// startTimeout bounds how long a server has to answer PING after it is
// started, and stopTimeout how long it has to exit after SIGTERM before it
// is killed.
const (
	startTimeout = 10 * time.Second
	stopTimeout  = 5 * time.Second
)

// Server is a redis-server process. Its methods are meant for the test
// goroutine that started it: they end the test with t.Fatal on failure.
type Server struct {
	t    testing.TB
	path string
	dir  string
	port int

	mu   sync.Mutex
	proc *process // nil while stopped
}

// process is one run of redis-server.
type process struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed once the process has exited
}

// Start starts a redis-server for t, and stops it when t ends. It skips t
// when redis-server is not on PATH, unless TIPKIT_REQUIRE_REDIS is 1.
func Start(t testing.TB) *Server {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		const msg = "redis-server not found: install it (apt-get install redis-server) to run the shared-store tests"
		if os.Getenv(RequireEnv) == "1" {
			t.Fatal(msg + " (" + RequireEnv + "=1)")
		}
		t.Skip(msg)
	}
	s := &Server{t: t, path: path, dir: t.TempDir()}
	// A free port may be taken by another process between the probe and
	// the server's bind: try again on another.
	var last string
	for range 5 {
		s.port = freePort(t)
		out, ok := s.start()
		if ok {
			t.Cleanup(s.Stop)
			return s
		}
		last = out
	}
	t.Fatalf("redistest: redis-server did not start; its last output:\n%s", last)
	return nil
}

// Addr returns the server's address, host:port.
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Client returns a client of the server that honours its contexts'
// deadlines (ContextTimeoutEnabled), closed when t ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// FlushAll deletes every key of the server.
func (s *Server) FlushAll() {
	s.t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := c.FlushAll(ctx).Err(); err != nil {
		s.t.Fatalf("redistest: FLUSHALL: %v", err)
	}
}

// Stop stops the server and waits until it has exited; the keys it held
// are gone. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	if p == nil {
		return
	}
	s.proc = nil
	_ = p.cmd.Process.Signal(terminate)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Start starts the server again, on the same port, after Stop, and waits
// until it answers; it does nothing while the server runs.
func (s *Server) Start() {
	s.t.Helper()
	if out, ok := s.start(); !ok {
		s.t.Fatalf("redistest: redis-server did not start again on port %d; its output:\n%s", s.port, out)
	}
}

// start starts redis-server on s.port and waits until it answers PING. It
// returns the server's output and false when it did not.
func (s *Server) start() (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return "", true
	}
	p := &process{out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(s.path,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--daemonize", "no",
		"--loglevel", "warning",
	)
	p.cmd.Dir = s.dir
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	setParentDeath(p.cmd)
	started := make(chan error, 1)
	go func() {
		// The thread that starts the process stays until the process
		// exits: on Linux the process is killed when that thread ends
		// (setParentDeath), which must be when the test binary ends, not
		// before.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := p.cmd.Start()
		started <- err
		if err == nil {
			_ = p.cmd.Wait()
		}
		close(p.done)
	}()
	if err := <-started; err != nil {
		return err.Error(), false
	}
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return p.out.String(), false
		default:
		}
		if ping(s.Addr()) {
			s.proc = p
			return "", true
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return p.out.String(), false
}

// ping reports whether a Redis server at addr answers PING.
func ping(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return err == nil && strings.TrimSpace(line) == "+PONG"
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: no free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuffer is a bytes.Buffer safe for the process's writes and the
// test's reads.
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
