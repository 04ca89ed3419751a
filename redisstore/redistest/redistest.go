// Package redistest runs a real redis-server, for the tests of code that
// shares sessions through [github.com/tipkit/tipkit/redisstore], and for
// programs that need a Redis
// of their own for a while (a demonstration, a load test). The server
// listens on a free port of 127.0.0.1, keeps nothing on disk (no RDB
// snapshots, no append-only file) and works in a temporary directory of
// its own.
//
// In a test, [Start] does everything: it skips the test when redis-server
// is not installed, saying how to install it (or fails the test when the
// environment variable TIPKIT_REQUIRE_REDIS is 1, as continuous
// integration sets it, so that a missing server cannot pass for a pass),
// and stops the server when the test ends:
//
//	func TestSharedSessions(t *testing.T) {
//		srv := redistest.Start(t)
//		store, err := redisstore.New(srv.Client(), redisstore.Options{EncryptionKeys: [][]byte{key}})
//		...
//	}
//
// [Server.Stop] takes Redis down and [Server.Restart] brings it back, empty,
// on the same address.
//
// A program, or a TestMain sharing one server between tests, calls [Run]
// and [Server.Close]; Run returns [ErrNotInstalled] when redis-server is
// missing.
//
// redis-server comes with Redis: apt-get install redis-server, brew
// install redis, or https://redis.io/downloads.
package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tipkit/tipkit/internal/serverproc"
)

// RequireEnv is the environment variable that, set to 1, makes [Start]
// fail a test rather than skip it when redis-server is not installed.
const RequireEnv = "TIPKIT_REQUIRE_REDIS"

// ErrNotInstalled is the error of [Run] when redis-server is not on PATH.
var ErrNotInstalled = errors.New("redistest: redis-server not found on PATH: install it (apt-get install redis-server, or brew install redis) to run the tests that need Redis")

// startTimeout bounds how long a server has to answer PING after it is
// started, and stopTimeout how long it has to exit after SIGTERM before it
// is killed.
const (
	startTimeout = 10 * time.Second
	stopTimeout  = 5 * time.Second
)

// Server is a redis-server process, started by [Start] or [Run]. Its
// methods are safe for concurrent use.
type Server struct {
	path string // of redis-server
	dir  string // its working directory, removed by Close
	port int

	mu      sync.Mutex
	proc    *serverproc.Process // nil while stopped
	closed  bool
	clients []*redis.Client // closed by Close
}

// Start starts a redis-server for tb and closes it when tb ends (see
// [Server.Close]). When redis-server is not on PATH, it skips tb with a
// message saying how to install it, or fails tb when the environment
// variable TIPKIT_REQUIRE_REDIS ([RequireEnv]) is 1. It fails tb when the
// server does not start.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := Run(context.Background())
	serverproc.Require(tb, err, ErrNotInstalled, RequireEnv)
	tb.Cleanup(s.Close)
	return s
}

// Run starts a redis-server and returns once it answers PING, or ctx ends
// (the wait is bounded by 10 seconds besides). It returns
// [ErrNotInstalled] when redis-server is not on PATH. The caller stops the
// server with [Server.Close]; should the program die first, Linux stops
// the server with it.
func Run(ctx context.Context) (*Server, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrNotInstalled
	}
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, fmt.Errorf("redistest: %w", err)
	}
	var s *Server
	err = serverproc.OnFreePort(ctx, "redistest", func(port int) error {
		s = &Server{path: path, dir: dir, port: port}
		return s.start(ctx)
	})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// Addr returns the server's address, 127.0.0.1:port. It stays the same
// across [Server.Stop] and [Server.Restart].
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Client returns a new client of the server, with go-redis's default
// options but ContextTimeoutEnabled (a context's deadline bounds each
// call, as the Timeout of [github.com/tipkit/tipkit/redisstore.Options]
// needs); [Server.Close] closes it. go-redis's default retries make a call
// to a stopped server fail only after a second or more: a test of an
// outage makes its own client on [Server.Addr], with MaxRetries -1 and
// DialerRetries 1 as package redisstore recommends.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), ContextTimeoutEnabled: true})
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = c.Close()
	} else {
		s.clients = append(s.clients, c)
	}
	return c
}

// Stop stops the server and returns once it has exited: clients' calls
// fail as when Redis is down, and the keys it held are gone. Stopping a
// stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stop()
}

// Restart starts the server again after [Server.Stop], on the same
// address and without keys, and returns once it answers PING; it does
// nothing while the server runs. It fails when the port was taken in the
// meantime, after Close, or when ctx ends first.
func (s *Server) Restart(ctx context.Context) error {
	return s.start(ctx)
}

// Close stops the server, closes the clients that [Server.Client] made
// and removes the server's directory. Closing again does nothing.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	for _, c := range s.clients {
		_ = c.Close()
	}
	s.clients = nil
	s.stop()
	_ = os.RemoveAll(s.dir)
}

// stop stops the running process, if any; s.mu is held.
func (s *Server) stop() {
	if s.proc != nil {
		s.proc.Stop(stopTimeout)
		s.proc = nil
	}
}

// start starts redis-server on s.port, unless it runs, and waits until it
// answers PING.
func (s *Server) start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("redistest: Restart after Close")
	}
	if s.proc != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	cmd := exec.Command(s.path,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--daemonize", "no",
		"--loglevel", "warning",
	)
	cmd.Dir = s.dir
	p, err := serverproc.Start(ctx, "redistest: redis-server", s.port, cmd, func(ctx context.Context) bool { return ping(ctx, s.Addr()) }, 10*time.Millisecond)
	if err != nil {
		return err
	}
	s.proc = p
	return nil
}

// ping reports whether a Redis server at addr answers PING within a
// second.
func ping(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return err == nil && strings.TrimSpace(line) == "+PONG"
}
