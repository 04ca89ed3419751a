package exchange_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/redisstore"
	"github.com/tipkit/tipkit/redisstore/redistest"
	"github.com/tipkit/tipkit/tiptest"
)

// sharedRedis is one real Redis and the encryption key of a fleet.
type sharedRedis struct {
	srv *redistest.Server
	key []byte
}

func newSharedRedis(t *testing.T) *sharedRedis {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &sharedRedis{srv: redistest.Start(t), key: key}
}

// replica returns a Cache with an Exchanger and a redisstore of its own on
// the shared Redis, as one process of a fleet has.
func (r *sharedRedis) replica(t *testing.T, env *tiptest.Env, wraps ...func(exchange.Store) exchange.Store) *exchange.Cache {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: r.srv.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = client.Close() })
	// 2 s per call: the race detector slows a herd well past the 100 ms default.
	store, err := redisstore.New(client, redisstore.Options{EncryptionKeys: [][]byte{r.key}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var s exchange.Store = store
	for _, w := range wraps {
		s = w(s)
	}
	return newCache(t, env, newExchanger(t, env, false), func(o *exchange.CacheOptions) { o.Store = s })
}

// A token exchanged by one replica is never sent again by another: the
// other takes the shared session, and once none is left, it asks for a
// fresh token without sending the spent one.
func TestCacheStoreTokenExchangedOnce(t *testing.T) {
	env := tiptest.New(t)
	r := newSharedRedis(t)
	a, b := r.replica(t, env), r.replica(t, env)
	tok := env.IdP.Token("alice")
	cfg, _, err := a.Credentials(context.Background(), key(env, "alice"), tok)
	if err != nil {
		t.Fatal(err)
	}
	_, first := owner(t, env, cfg)
	cfg, _, err = b.Credentials(context.Background(), key(env, "alice"), tok)
	if err != nil {
		t.Fatal(err)
	}
	if got, creds := owner(t, env, cfg); got != "alice" || creds.AccessKeyID != first.AccessKeyID {
		t.Fatalf("replica b served %q's credentials %s, want alice's %s", got, creds.AccessKeyID, first.AccessKeyID)
	}
	if st := b.Stats(); st.SharedHits != 1 || st.Exchanges != 0 {
		t.Fatalf("replica b: %+v", st)
	}
	wantCalls(t, env, 0, 1, 1)

	// The session leaves Redis (evicted, say); the token's mark stays. A
	// new replica cannot serve alice, and does not send her spent token.
	rdb := r.srv.Client()
	keys, err := rdb.Keys(context.Background(), "*:s").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("session keys %v, %v", keys, err)
	}
	rdb.Del(context.Background(), keys...)
	_, _, err = r.replica(t, env).Credentials(context.Background(), key(env, "alice"), tok)
	var xe *exchange.Error
	if !errors.Is(err, exchange.ErrReauthenticate) || !errors.As(err, &xe) || xe.Code != "TokenExchangedElsewhere" {
		t.Fatalf("a token spent on another replica: %v, want ErrReauthenticate (TokenExchangedElsewhere)", err)
	}
	wantCalls(t, env, 0, 1, 1)
}

// The refresh token is single-use: only the replica holding the user's
// lease spends it, and the next renewal, wherever it runs, starts from the
// refresh token that replica saved. No refresh token is ever sent twice
// (tiptest refuses a second use, as IAM Identity Center does).
func TestCacheStoreRefreshTokenSpentOnce(t *testing.T) {
	env := tiptest.New(t, tiptest.WithRefreshGrant())
	r := newSharedRedis(t)
	c := []*exchange.Cache{r.replica(t, env), r.replica(t, env), r.replica(t, env)}
	tok := env.IdP.Token("alice", tiptest.WithLifetime(8*time.Hour))
	for _, rc := range c {
		if _, _, err := rc.Credentials(context.Background(), key(env, "alice"), tok); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 3 {
		env.Clock.Advance(time.Hour + time.Minute) // credentials and identity context expired
		var wg sync.WaitGroup
		for i := range 3 * len(c) {
			wg.Go(func() {
				cfg, _, err := c[(i+round)%len(c)].Credentials(context.Background(), key(env, "alice"), tok)
				if err != nil {
					t.Errorf("round %d: %v", round, err)
					return
				}
				if got, _ := owner(t, env, cfg); got != "alice" {
					t.Errorf("round %d: credentials of %q", round, got)
				}
			})
		}
		wg.Wait()
	}
	// One jwt-bearer exchange, then one refresh per round for the fleet.
	wantCalls(t, env, 0, 1+3, 1+3)
}

// Users held in a replica's memory never reach the Store: with Redis
// stopped they are served as before, and a user the replica does not hold
// is exchanged by the replica alone.
func TestCacheStoreDownWorksAlone(t *testing.T) {
	env := tiptest.New(t)
	r := newSharedRedis(t)
	a := r.replica(t, env)
	if _, _, err := a.Credentials(context.Background(), key(env, "alice"), env.IdP.Token("alice")); err != nil {
		t.Fatal(err)
	}
	r.srv.Stop()
	if _, _, err := a.Credentials(context.Background(), key(env, "alice"), ""); err != nil {
		t.Fatalf("a user held locally, Redis down: %v", err)
	}
	if st := a.Stats(); st.StoreFailures != 0 {
		t.Fatalf("a local hit reached the store: %+v", st)
	}
	cfg, _, err := a.Credentials(context.Background(), key(env, "bob"), env.IdP.Token("bob"))
	if err != nil {
		t.Fatalf("a new user, Redis down: %v", err)
	}
	if got, _ := owner(t, env, cfg); got != "bob" {
		t.Fatalf("credentials of %q", got)
	}
	if st := a.Stats(); st.StoreFailures == 0 {
		t.Fatalf("no store failure counted: %+v", st)
	}
	if err := r.srv.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// swallowingStore is a Store behind an endpoint that takes requests and
// never answers: each call fails after its timeout.
type swallowingStore struct {
	timeout time.Duration
	calls   atomic.Int64
}

func (s *swallowingStore) wait(ctx context.Context) error {
	s.calls.Add(1)
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	<-ctx.Done()
	return fmt.Errorf("store: %w", ctx.Err())
}

func (s *swallowingStore) Load(ctx context.Context, _ exchange.StoreKey) (*exchange.Session, error) {
	return nil, s.wait(ctx)
}
func (s *swallowingStore) Save(ctx context.Context, _ exchange.StoreKey, _ *exchange.Session) error {
	return s.wait(ctx)
}
func (s *swallowingStore) ClaimToken(ctx context.Context, _ exchange.StoreKey, _, _ string, _ time.Time) (bool, error) {
	return false, s.wait(ctx)
}
func (s *swallowingStore) ReleaseToken(ctx context.Context, _ exchange.StoreKey, _, _ string) error {
	return s.wait(ctx)
}
func (s *swallowingStore) Acquire(ctx context.Context, _ exchange.StoreKey, _ string, _ time.Duration) (bool, error) {
	return false, s.wait(ctx)
}
func (s *swallowingStore) Release(ctx context.Context, _ exchange.StoreKey, _ string) error {
	return s.wait(ctx)
}

// A Store that has answered nothing for a second is down, not slow: with
// calls that time out after a second (dynamostore's default), a new user's
// first exchange costs one Store call (one timeout), not a retry per call,
// and after a few such calls the Store is left aside, so that the next new
// users cost none.
func TestCacheStoreSwallowingCostsOneTimeout(t *testing.T) {
	env := tiptest.New(t)
	store := &swallowingStore{timeout: time.Second}
	c := newCache(t, env, newExchanger(t, env, false), func(o *exchange.CacheOptions) { o.Store = store })
	for i, want := range []int64{1, 1, 1, 0, 0} {
		user := fmt.Sprintf("user%d", i)
		before := store.calls.Load()
		cfg, _, err := c.Credentials(context.Background(), key(env, user), env.IdP.Token(user))
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		if got, _ := owner(t, env, cfg); got != user {
			t.Fatalf("%s was given the credentials of %q", user, got)
		}
		if n := store.calls.Load() - before; n != want {
			t.Errorf("new user %s: %d Store calls, want %d", user, n, want)
		}
	}
	if n := env.AWS.Calls("CreateTokenWithIAM"); n != 5 {
		t.Errorf("%d CreateTokenWithIAM calls for 5 users, want 5", n)
	}
}

// stalledLoad holds the first Load of one user past the store's timeout,
// as a Redis slow under a burst answers it.
type stalledLoad struct {
	exchange.Store
	user    string
	stall   time.Duration
	started chan struct{}
	ended   chan struct{}
	loads   atomic.Int64
}

func (s *stalledLoad) Load(ctx context.Context, key exchange.StoreKey) (*exchange.Session, error) {
	if key.User.Subject != s.user {
		return s.Store.Load(ctx, key)
	}
	if s.loads.Add(1) == 1 {
		close(s.started)
		time.Sleep(s.stall)
		close(s.ended)
		return nil, fmt.Errorf("stalled: %w", context.DeadlineExceeded)
	}
	return s.Store.Load(ctx, key)
}

// A flight whose first Store call timed out while the Store answered other
// calls meanwhile (a burst, not an outage) makes the call again and shares
// the user's session: it does not work alone, and another replica serves
// the user from the Store, without sending the spent token.
func TestCacheStoreSlowUnderBurstIsRetried(t *testing.T) {
	env := tiptest.New(t)
	r := newSharedRedis(t)
	stalled := &stalledLoad{user: "alice", stall: 1500 * time.Millisecond, started: make(chan struct{}), ended: make(chan struct{})}
	a := r.replica(t, env, func(s exchange.Store) exchange.Store { stalled.Store = s; return stalled })
	b := r.replica(t, env)
	tok := env.IdP.Token("alice")
	done := make(chan error, 1)
	go func() {
		_, _, err := a.Credentials(context.Background(), key(env, "alice"), tok)
		done <- err
	}()
	<-stalled.started
	// Other users keep the Store answering while alice's Load stalls.
	for i := 0; ; i++ {
		select {
		case <-stalled.ended:
		default:
			user := fmt.Sprintf("burst%d", i)
			if _, _, err := a.Credentials(context.Background(), key(env, user), env.IdP.Token(user)); err != nil {
				t.Fatalf("%s: %v", user, err)
			}
			continue
		}
		break
	}
	if err := <-done; err != nil {
		t.Fatalf("alice: %v", err)
	}
	if n := stalled.loads.Load(); n < 2 {
		t.Fatalf("alice's Load made %d times, want it made again after the timeout", n)
	}
	before := env.AWS.Calls("CreateTokenWithIAM")
	cfg, _, err := b.Credentials(context.Background(), key(env, "alice"), tok)
	if err != nil {
		t.Fatalf("alice on the other replica: %v (her flight worked alone)", err)
	}
	if got, _ := owner(t, env, cfg); got != "alice" {
		t.Fatalf("credentials of %q", got)
	}
	if n := env.AWS.Calls("CreateTokenWithIAM") - before; n != 0 {
		t.Fatalf("%d CreateTokenWithIAM calls on the other replica, want 0", n)
	}
}
