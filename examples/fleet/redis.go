package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tipkit/tipkit/redisstore/redistest"
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
		rs, err := startRedisServer(ctx)
		if !errors.Is(err, redistest.ErrNotInstalled) {
			return rs, err
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

// startRedisServer starts a redis-server from PATH on a free loopback
// port, without persistence, in a temporary directory, and waits until it
// answers.
func startRedisServer(ctx context.Context) (*redisServer, error) {
	srv, err := redistest.Run(ctx)
	if err != nil {
		return nil, err
	}
	rs := newRedisServer(srv.Addr(), srv.Close)
	version, err := rs.version(ctx)
	if err != nil {
		rs.stop()
		return nil, fmt.Errorf("redis-server on %s: %w", srv.Addr(), err)
	}
	rs.about = fmt.Sprintf("redis-server %s on %s, started for this run without persistence", version, srv.Addr())
	return rs, nil
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
