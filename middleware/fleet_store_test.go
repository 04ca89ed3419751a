package middleware_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/internal/redislate"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/redisstore"
	"github.com/tipkit/tipkit/redisstore/redistest"
	"github.com/tipkit/tipkit/tiptest"
)

// Keys of redisstore (see its package documentation): a token's mark and
// a user's lease.
func isTokenMark(key string) bool { return strings.Contains(key, "}:t:") }
func isLease(key string) bool     { return strings.HasSuffix(key, "}:l") }

// A claim that Redis applied but answered after the store's Timeout is
// found again as this replica's own when the claim is made again: the
// token is exchanged once, and the user is served by this replica and by
// the others. (It used to be read as another replica's claim: 401 "obtain
// a fresh token" on every replica, and no exchange at all.)
func TestFleetClaimAnsweredLate(t *testing.T) {
	f := newFleet(t, 2)
	late := &redislate.Hook{Match: isTokenMark}
	f.hooks = map[int]redis.Hook{0: late}
	f.restart(0)
	tok := f.env.IdP.Token("alice")
	start := time.Now()
	a := f.get(0, tok)
	t.Logf("a claim answered late: %d %s in %v, %d CreateTokenWithIAM", a.code, a.errCode, time.Since(start).Round(time.Millisecond), f.calls("CreateTokenWithIAM"))
	if !late.Fired() {
		t.Fatal("no claim was answered late")
	}
	a.check(t, "alice", false)
	f.get(1, tok).check(t, "alice", false)
	if c := f.calls("CreateTokenWithIAM"); c != 1 {
		t.Fatalf("%d CreateTokenWithIAM calls, want 1", c)
	}
}

// A lease that Redis granted but answered after the store's Timeout is
// found again as the flight's own: the flight exchanges under it and
// releases it. (The flight used to find its own orphaned lease busy, poll
// it until Cache.Timeout and answer 503, and the other replicas waited
// for the lease to expire.)
func TestFleetLeaseAnsweredLate(t *testing.T) {
	f := newFleet(t, 2, func(o *middleware.Options) { o.Cache.Timeout = 10 * time.Second })
	late := &redislate.Hook{Match: isLease}
	f.hooks = map[int]redis.Hook{0: late}
	f.restart(0)
	tok := f.env.IdP.Token("alice")
	start := time.Now()
	a := f.get(0, tok)
	t.Logf("a lease answered late: %d %s in %v, %d CreateTokenWithIAM", a.code, a.errCode, time.Since(start).Round(time.Millisecond), f.calls("CreateTokenWithIAM"))
	if !late.Fired() {
		t.Fatal("no lease was answered late")
	}
	a.check(t, "alice", false)
	leases, err := f.redis.Client().Keys(context.Background(), "*}:l").Result()
	if err != nil || len(leases) != 0 {
		t.Fatalf("leases left in Redis: %v, %v; want none", leases, err)
	}
	f.get(1, f.env.IdP.Token("alice")).check(t, "alice", false)
	if c := f.calls("CreateTokenWithIAM"); c != 1 {
		t.Fatalf("%d CreateTokenWithIAM calls, want 1", c)
	}
}

// readmeClient is the Redis client of README's "Running several replicas",
// without TLS (redistest's server has none).
func readmeClient(addr string) redis.UniversalClient {
	return redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:                 []string{addr},
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		DialerRetries:         1,
		DialTimeout:           time.Second,
	})
}

// storeCalls counts the commands a Redis client is asked to run.
type storeCalls struct{ n atomic.Int64 }

func (h *storeCalls) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *storeCalls) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

func (h *storeCalls) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

// With Redis stopped, a new user costs at most one store call (which
// fails at once), with README's client and redisstore's defaults: every
// user is served. (Each new user used to cost 5 calls, each waiting out
// the 100 ms Timeout while go-redis retried the refused dial, and the
// pauses between them: about a second.) Timings are logged, not asserted.
func TestFleetRedisDownNewUsers(t *testing.T) {
	srv := redistest.Start(t)
	env := tiptest.New(t)
	rdb := readmeClient(srv.Addr())
	t.Cleanup(func() { _ = rdb.Close() })
	calls := &storeCalls{}
	rdb.AddHook(calls)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	store, err := redisstore.New(rdb, redisstore.Options{EncryptionKeys: [][]byte{key}})
	if err != nil {
		t.Fatal(err)
	}
	h := newMiddleware(t, env, func(o *middleware.Options) { o.Cache.Store = store }).Handler(whoAmI(env))
	srv.Stop()
	var took []string
	for i := range 5 {
		before := calls.n.Load()
		start := time.Now()
		w := serve(h, request(env.IdP.Token(fmt.Sprintf("new%d", i))))
		n := calls.n.Load() - before
		took = append(took, fmt.Sprintf("%v (%d store calls)", time.Since(start).Round(time.Millisecond), n))
		if w.Code != http.StatusOK {
			t.Errorf("new user %d with Redis stopped: %d %s", i, w.Code, w.Body)
		}
		if n > 1 {
			t.Errorf("new user %d with Redis stopped: %d store calls, want at most 1", i, n)
		}
	}
	t.Logf("Redis stopped, 5 new users one after another: %s", strings.Join(took, ", "))
}

// A token refused because another replica claimed it was never sent from
// here: once that replica releases its claim (its CreateTokenWithIAM was
// throttled, say), the token is exchanged here, once the short memory of
// the refusal (Cache.UnavailableTTL) has passed. (The refusal used to leave
// the token marked as spent in this replica's memory: 401 until it
// expired.)
func TestFleetTokenClaimedElsewhereThenReleased(t *testing.T) {
	f := newFleet(t, 1)
	r := f.replicas[0].Load()
	tok := f.env.IdP.Token("alice")
	key := exchange.StoreKey{Namespace: exchangeNamespace(f.env), User: exchange.UserKey{Issuer: f.env.IdP.Issuer(), Subject: "alice"}}
	ctx := context.Background()
	const other = "another-replica's-claim"
	if ok, err := r.store.ClaimToken(ctx, key, exchange.TokenID(tok), other, time.Now().Add(time.Hour)); err != nil || !ok {
		t.Fatalf("ClaimToken: %t, %v", ok, err)
	}
	f.get(0, tok).check(t, "alice", true)
	if c := f.calls("CreateTokenWithIAM"); c != 0 {
		t.Fatalf("%d CreateTokenWithIAM calls for a token claimed elsewhere, want 0", c)
	}
	if err := r.store.ReleaseToken(ctx, key, exchange.TokenID(tok), other); err != nil {
		t.Fatal(err)
	}
	// The refusal is remembered for that token for Cache.UnavailableTTL,
	// so that resending it costs no Store flight on every request.
	f.get(0, tok).check(t, "alice", true)
	f.env.Clock.Advance(exchange.DefaultUnavailableTTL)
	f.get(0, tok).check(t, "alice", false)
	if c := f.calls("CreateTokenWithIAM"); c != 1 {
		t.Fatalf("%d CreateTokenWithIAM calls, want 1", c)
	}
}
