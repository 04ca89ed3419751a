// Package redisserver runs a real redis-server for the benchmarks, the load
// driver and their tests: [Start] starts one on a free loopback port,
// without persistence, in a temporary directory of its own, and
// [Server.Close] stops it and removes the directory.
//
// When redis-server is not on PATH, Start returns [ErrNotInstalled], and
// [ForTest] skips its test, or fails it when the environment variable
// TIPKIT_REQUIRE_REDIS is 1, as continuous integration sets it.
package redisserver

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RequireEnv is the environment variable that, set to 1, makes [ForTest]
// fail a test rather than skip it when redis-server is not installed.
const RequireEnv = "TIPKIT_REQUIRE_REDIS"

// ErrNotInstalled is returned by [Start] when redis-server is not on PATH.
var ErrNotInstalled = errors.New("redis-server not found on PATH: install it (apt-get install redis-server) to run the fleet benchmarks")

// How long a server has to answer PING once started, and to exit after
// SIGTERM before it is killed.
const (
	startTimeout = 10 * time.Second
	stopTimeout  = 5 * time.Second
)

// Server is one redis-server process.
type Server struct {
	addr string
	dir  string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed once the process has exited

	closeOnce sync.Once
	closeErr  error
}

// Required reports whether a missing redis-server must fail rather than
// skip: TIPKIT_REQUIRE_REDIS is 1.
func Required() bool { return os.Getenv(RequireEnv) == "1" }

// Start starts a redis-server on a free port of 127.0.0.1 and returns
// once it answers PING. It returns ErrNotInstalled when redis-server is
// not on PATH.
func Start() (*Server, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrNotInstalled
	}
	// A free port may be taken by another process between the probe and
	// the server's bind: try again on another.
	var last error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s, err := start(path, port)
		if err == nil {
			return s, nil
		}
		last = err
	}
	return nil, last
}

// ForTest starts a server for tb and closes it when tb ends. It skips tb
// when redis-server is not on PATH, unless TIPKIT_REQUIRE_REDIS is 1.
func ForTest(tb testing.TB) *Server {
	tb.Helper()
	s, err := Start()
	if errors.Is(err, ErrNotInstalled) && !Required() {
		tb.Skip(err.Error())
	}
	if err != nil {
		tb.Fatalf("redisserver: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// Addr returns the server's address, host:port.
func (s *Server) Addr() string { return s.addr }

// Close stops the server, waits until it has exited and removes its
// directory. Closing again does nothing.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		_ = s.cmd.Process.Signal(terminate)
		select {
		case <-s.done:
		case <-time.After(stopTimeout):
			_ = s.cmd.Process.Kill()
			<-s.done
			s.closeErr = fmt.Errorf("redisserver: redis-server on %s did not exit within %v of SIGTERM: killed", s.addr, stopTimeout)
		}
		if err := os.RemoveAll(s.dir); err != nil && s.closeErr == nil {
			s.closeErr = err
		}
	})
	return s.closeErr
}

// start runs redis-server on port and waits for its PONG.
func start(path string, port int) (*Server, error) {
	dir, err := os.MkdirTemp("", "tipkit-bench-redis-")
	if err != nil {
		return nil, err
	}
	s := &Server{
		addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		dir:  dir,
		out:  &syncBuffer{},
		done: make(chan struct{}),
	}
	s.cmd = exec.Command(path,
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		"--daemonize", "no",
		"--loglevel", "warning",
	)
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	setParentDeath(s.cmd)
	started := make(chan error, 1)
	go func() {
		// The thread that starts the process stays until the process
		// exits: on Linux the process is killed when that thread ends
		// (setParentDeath), which must be when this program ends, not
		// before.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := s.cmd.Start()
		started <- err
		if err == nil {
			_ = s.cmd.Wait()
		}
		close(s.done)
	}()
	if err := <-started; err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("redisserver: starting redis-server: %w", err)
	}
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("redisserver: redis-server exited at start; its output:\n%s", s.out.String())
		default:
		}
		if ping(s.addr) {
			return s, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	_ = os.RemoveAll(dir)
	return nil, fmt.Errorf("redisserver: redis-server did not answer PING within %v; its output:\n%s", startTimeout, s.out.String())
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
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redisserver: no free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
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
