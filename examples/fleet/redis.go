package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// How long a started redis-server has to answer PING, and to exit after
// SIGTERM before it is killed.
const (
	redisStartTimeout = 10 * time.Second
	redisStopTimeout  = 5 * time.Second
)

// redisServer is the Redis the replicas share.
type redisServer struct {
	addr  string
	about string        // what it is, for the output
	rdb   *redis.Client // this program's own client, for keys and clean
	halt  func()        // stops what this program started
}

// startRedis returns the Redis of c: the one at c.redis; else a
// redis-server from PATH, unless c.embedded; else an embedded one.
func startRedis(ctx context.Context, c config) (*redisServer, error) {
	if c.redis != "" {
		if err := reachable(ctx, c.redis); err != nil {
			return nil, fmt.Errorf("-redis: %w", err)
		}
		rs := newRedisServer(c.redis, func() {})
		version, err := rs.version(ctx)
		if err != nil {
			rs.stop()
			return nil, fmt.Errorf("-redis %s: %w", c.redis, err)
		}
		rs.about = fmt.Sprintf("existing Redis %s at %s (-redis)", version, c.redis)
		return rs, nil
	}
	why := "chosen by -embedded"
	if !c.embedded {
		path, err := exec.LookPath("redis-server")
		if err == nil {
			return startRedisServer(ctx, path)
		}
		why = "no redis-server on PATH"
	}
	// miniredis keeps a key's TTL until told to move time, unless its TTLs
	// follow the clock: the leases and spent-token marks must expire.
	m := miniredis.NewMiniRedis()
	m.ClockTTL(true)
	if err := m.Start(); err != nil {
		return nil, fmt.Errorf("embedded Redis: %w", err)
	}
	rs := newRedisServer(m.Addr(), m.Close)
	rs.about = fmt.Sprintf("embedded (miniredis, in this process) on %s: %s", m.Addr(), why)
	return rs, nil
}

func newRedisServer(addr string, halt func()) *redisServer {
	return &redisServer{addr: addr, rdb: redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true}), halt: halt}
}

// stop closes the client and stops what this program started.
func (rs *redisServer) stop() {
	_ = rs.rdb.Close()
	rs.halt()
}

// version returns the server's redis_version, which it must answer within
// a second.
func (rs *redisServer) version(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	info, err := rs.rdb.Info(ctx, "server").Result()
	if err != nil {
		return "", err
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v, nil
		}
	}
	return "(version unknown)", nil
}

// keyNames returns the names of the keys under prefix.
func (rs *redisServer) keyNames(ctx context.Context, prefix string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var names []string
	iter := rs.rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	for iter.Next(ctx) {
		names = append(names, iter.Val())
	}
	return names, iter.Err()
}

// keys counts the keys under prefix by kind: "s" sessions, "t" spent-token
// marks, "l" leases (see package redisstore).
func (rs *redisServer) keys(ctx context.Context, prefix string) map[string]int {
	kinds := map[string]int{}
	names, _ := rs.keyNames(ctx, prefix)
	for _, name := range names {
		_, after, ok := strings.Cut(name, "}:")
		if !ok {
			continue
		}
		kind, _, _ := strings.Cut(after, ":")
		kinds[kind]++
	}
	return kinds
}

// clean deletes the keys under prefix: on an existing Redis, this run
// leaves nothing behind.
func (rs *redisServer) clean(prefix string) {
	ctx := context.Background()
	names, _ := rs.keyNames(ctx, prefix)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for len(names) > 0 {
		n := min(len(names), 500)
		_ = rs.rdb.Del(ctx, names[:n]...).Err()
		names = names[n:]
	}
}

// startRedisServer starts the redis-server at path on a free loopback port,
// without persistence, in a temporary directory, and waits until it
// answers.
func startRedisServer(ctx context.Context, path string) (*redisServer, error) {
	dir, err := os.MkdirTemp("", "tipkit-fleet-redis-")
	if err != nil {
		return nil, err
	}
	// A free port may be taken by another process between the probe and
	// the server's bind: try again on another.
	var last error
	for range 5 {
		port, err := freePort()
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		rs, err := runRedisServer(ctx, path, dir, port)
		if err == nil {
			return rs, nil
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	_ = os.RemoveAll(dir)
	return nil, fmt.Errorf("redis-server did not start: %w", last)
}

// runRedisServer runs one redis-server on port and waits until it answers.
func runRedisServer(ctx context.Context, path, dir string, port int) (*redisServer, error) {
	cmd := exec.Command(path,
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		"--daemonize", "no",
		"--loglevel", "warning",
	)
	cmd.Dir = dir
	var out bytes.Buffer // read only once the process has exited
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	halt := func() {
		if cmd.Process.Signal(syscall.SIGTERM) != nil {
			_ = cmd.Process.Kill()
		}
		select {
		case <-done:
		case <-time.After(redisStopTimeout):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	rs := newRedisServer(addr, func() {
		halt()
		_ = os.RemoveAll(dir)
	})
	deadline := time.Now().Add(redisStartTimeout)
	for {
		// Dial first: go-redis logs each dial it fails.
		if reachable(ctx, addr) == nil {
			if version, err := rs.version(ctx); err == nil {
				rs.about = fmt.Sprintf("redis-server %s on %s, started for this run without persistence", version, addr)
				return rs, nil
			}
		}
		select {
		case <-done:
			_ = rs.rdb.Close()
			return nil, fmt.Errorf("it exited: %s", strings.TrimSpace(out.String()))
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			_ = rs.rdb.Close()
			halt()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, errors.New("it did not answer PING in time")
		}
	}
}

// reachable returns nil when a TCP connection to addr opens within a
// second, or the error of the dial.
func reachable(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return conn.Close()
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
