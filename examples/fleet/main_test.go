package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tipkit/tipkit/redisstore/redistest"
)

// runFleet runs the example with c and checks that it passed and printed
// each of want.
func runFleet(t *testing.T, c config, want ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out, c); err != nil {
		t.Fatalf("fleet failed: %v\n%s", err, out.String())
	}
	for _, w := range append(want, "OK:") {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
	return out.String()
}

// The example as go run runs it, with fewer users: a redis-server from
// PATH when there is one, else the embedded Redis. (The race detector
// slows everything several times over; the herd of go run's defaults
// would mostly measure that.)
func TestFleet(t *testing.T) {
	runFleet(t, config{replicas: 3, users: 12, requests: 4},
		"user01..user12", "r1 r2 r3 r4", "1 each", "12 sealed sessions", "(stopped)")
}

// The embedded Redis (miniredis) serves everything redisstore asks of
// Redis: SET NX PX, GET, DEL, and the lease's compare-and-delete script.
func TestFleetEmbedded(t *testing.T) {
	runFleet(t, config{replicas: 3, users: 8, requests: 4, embedded: true},
		"embedded (miniredis", "user1..user8", "8 sealed sessions")
}

// With -redis, the example uses that server and leaves none of its keys
// behind.
func TestFleetExistingRedis(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client()
	ctx := context.Background()
	if err := rdb.Set(ctx, "someone:else", "kept", 0).Err(); err != nil {
		t.Fatal(err)
	}
	runFleet(t, config{replicas: 2, users: 5, requests: 4, redis: srv.Addr()},
		"existing Redis", "at "+srv.Addr(), "r1 r2 r3")
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "someone:else" {
		t.Fatalf("keys left on the server: %v, want only someone:else", keys)
	}
}

func TestFleetRejectsBadFlags(t *testing.T) {
	for _, c := range []config{{replicas: 0, users: 1, requests: 1}, {replicas: 1, users: 0, requests: 1}, {replicas: 1, users: 1, requests: 0}} {
		if err := run(context.Background(), &bytes.Buffer{}, c); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}
