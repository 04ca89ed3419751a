package middleware_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/redisstore"
	"github.com/tipkit/tipkit/redisstore/redistest"
	"github.com/tipkit/tipkit/tiptest"
)

// fleet is several middleware replicas on one tiptest and one real Redis,
// each with a Store of its own, as separate processes would have.
type fleet struct {
	t        *testing.T
	env      *tiptest.Env
	redis    *redistest.Server
	key      []byte
	replicas []atomic.Pointer[replica]
	edit     []func(*middleware.Options)
	hooks    map[int]redis.Hook // added to the Redis client of replica i when it starts
}

type replica struct {
	m     *middleware.Middleware
	h     http.Handler
	store *redisstore.Store

	// serving is read-locked by each request the replica serves; stopped
	// is set, under the write lock, once it serves no more.
	serving sync.RWMutex
	stopped bool
}

func newFleet(t *testing.T, n int, edit ...func(*middleware.Options)) *fleet {
	t.Helper()
	srv := redistest.Start(t)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	f := &fleet{t: t, env: tiptest.New(t), redis: srv, key: key, replicas: make([]atomic.Pointer[replica], n), edit: edit}
	for i := range n {
		f.replicas[i].Store(f.start(i))
	}
	return f
}

// start builds replica i. Replicas' clocks are skewed by up to 20 s, within
// the verification leeway.
func (f *fleet) start(i int) *replica {
	f.t.Helper()
	// The race detector slows every goroutine several times over on these
	// small machines: a herd would blow the default 100 ms per call, and
	// each replica would work alone, as it does when Redis is down.
	// Without command or dial retries, a stopped Redis fails each call at
	// once (go-redis retries a refused dial for over a second by default).
	client := redis.NewClient(&redis.Options{Addr: f.redis.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1, DialerRetries: 1})
	f.t.Cleanup(func() { _ = client.Close() })
	if h := f.hooks[i]; h != nil {
		client.AddHook(h)
	}
	store, err := redisstore.New(client, redisstore.Options{EncryptionKeys: [][]byte{f.key}, Timeout: 2 * time.Second})
	if err != nil {
		f.t.Fatal(err)
	}
	skew := time.Duration(i%3-1) * 20 * time.Second
	edits := append([]func(*middleware.Options){func(o *middleware.Options) {
		o.Cache.Store = store
		o.Now = func() time.Time { return f.env.Clock.Now().Add(skew) }
	}}, f.edit...)
	m := newMiddleware(f.t, f.env, edits...)
	return &replica{m: m, h: m.Handler(whoAmI(f.env)), store: store}
}

// restart replaces replica i by a new process: memory lost, Store kept.
// As a server's graceful shutdown does, the old one finishes the requests
// it is serving before it stops; requests that arrive meanwhile reach the
// new one.
func (f *fleet) restart(i int) {
	old := f.replicas[i].Swap(f.start(i))
	old.serving.Lock()
	old.stopped = true
	old.serving.Unlock()
	_ = old.m.Close()
}

// get sends token to replica i.
func (f *fleet) get(i int, token string) answer {
	var w *httptest.ResponseRecorder
	for w == nil {
		r := f.replicas[i%len(f.replicas)].Load()
		r.serving.RLock()
		if !r.stopped {
			w = serve(r.h, request(token))
		}
		r.serving.RUnlock()
	}
	return readAnswer(f.env, w)
}

// readAnswer reads whoAmI's answer w, with the owner of the credentials the
// handler was given, as env's AWS knows them.
func readAnswer(env *tiptest.Env, w *httptest.ResponseRecorder) answer {
	a := answer{code: w.Code}
	var body map[string]string
	if json.Unmarshal(w.Body.Bytes(), &body) == nil {
		a.key, a.sub, a.errCode, a.desc = body["key"], body["sub"], body["error"], body["error_description"]
	}
	if a.code == http.StatusOK {
		a.owner, _ = env.AWS.UserFor(a.key)
	}
	return a
}

// answer is what a client of the fleet saw.
type answer struct {
	code            int
	key, sub, owner string
	errCode, desc   string
}

// check reports an answer that is neither a 200 with user's own
// credentials nor, when fresh is true, a 401 asking for a fresh token.
func (a answer) check(t testing.TB, user string, fresh bool) bool {
	t.Helper()
	switch {
	case a.code == http.StatusOK && a.owner == user && a.sub == user:
		return true
	case a.code == http.StatusOK:
		t.Errorf("a request of %s was served with credentials of %q", user, a.owner)
	case fresh && a.code == http.StatusUnauthorized && a.errCode == "invalid_token" && strings.Contains(a.desc, "fresh token"):
		return false
	default:
		t.Errorf("%s: %d %s %q", user, a.code, a.errCode, a.desc)
	}
	return false
}

func (f *fleet) calls(op string) int { return f.env.AWS.Calls(op) }

// The reproduction: 60 users, 6 concurrent requests each spread
// over 3 replicas. Every request is answered 200 with the user's own
// credentials, and the fleet exchanges each user's token once.
func TestFleetHerdExchangesOncePerUser(t *testing.T) {
	f := newFleet(t, 3)
	const users, perUser = 60, 6
	var wg sync.WaitGroup
	for u := range users {
		user := fmt.Sprintf("user%02d", u)
		tok := f.env.IdP.Token(user)
		for r := range perUser {
			wg.Go(func() { f.get(u+r, tok).check(t, user, false) })
		}
	}
	wg.Wait()
	if c, a := f.calls("CreateTokenWithIAM"), f.calls("AssumeRole"); c != users || a != users {
		t.Fatalf("%d CreateTokenWithIAM and %d AssumeRole calls for %d users, want %d each", c, a, users, users)
	}
	var shared uint64
	for i := range f.replicas {
		shared += f.replicas[i].Load().m.Stats().SharedHits
	}
	if shared == 0 {
		t.Fatal("no replica took a session from the store")
	}
}

// Replicas restarted one after the other under load find their users'
// sessions in Redis: no answer other than 200, no new exchange.
func TestFleetRollingRestartUnderLoad(t *testing.T) {
	f := newFleet(t, 3)
	const users = 30
	tokens := make([]string, users)
	for u := range tokens {
		tokens[u] = f.env.IdP.Token(fmt.Sprintf("user%02d", u))
		f.get(u, tokens[u]).check(t, fmt.Sprintf("user%02d", u), false)
	}
	before := f.calls("CreateTokenWithIAM")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var served atomic.Int64
	progress := make(chan struct{}, 1) // a signal after each answer served
	for u := range users {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if f.get(u+n, tokens[u]).check(t, fmt.Sprintf("user%02d", u), false) {
					served.Add(1)
					select {
					case progress <- struct{}{}:
					default:
					}
				}
			}
		})
	}
	// underLoad waits until the fleet has served as many answers again as
	// there are users, spread over the replicas.
	underLoad := func() {
		t.Helper()
		for target := served.Load() + users; served.Load() < target; {
			select {
			case <-progress:
			case <-time.After(waitLimit):
				t.Fatalf("%d answers served, want %d", served.Load(), target)
			}
		}
	}
	for i := range f.replicas {
		underLoad()
		f.restart(i)
	}
	underLoad()
	close(stop)
	wg.Wait()
	if got := f.calls("CreateTokenWithIAM"); got != before {
		t.Fatalf("%d CreateTokenWithIAM calls during the restarts, want none", got-before)
	}
	t.Logf("%d answers during a rolling restart of %d replicas", served.Load(), len(f.replicas))
}

// Redis stopped under load: every replica works alone. Nobody gets a 5xx
// or a 403: a request lands either on a replica holding its user (200) or
// is asked for a fresh token (401). Once Redis is back (empty), sharing
// resumes: a new user costs one exchange for the fleet.
func TestFleetRedisOutage(t *testing.T) {
	f := newFleet(t, 3)
	const users = 12
	tokens := make([]string, users)
	for u := range tokens {
		tokens[u] = f.env.IdP.Token(fmt.Sprintf("user%02d", u))
		for r := range 3 {
			f.get(u+r, tokens[u]).check(t, fmt.Sprintf("user%02d", u), false)
		}
	}
	f.redis.Stop()
	// Users held by every replica keep working.
	for u := range users {
		for r := range 3 {
			f.get(u+r, tokens[u]).check(t, fmt.Sprintf("user%02d", u), false)
		}
	}
	// New users: a token works on the replica it reaches first; the others
	// cannot know it is spent and ask for a fresh token, never 403 or 5xx.
	var ok, fresh int
	for u := range users {
		user := fmt.Sprintf("new%02d", u)
		tok := f.env.IdP.Token(user)
		for r := range 3 {
			if f.get(u+r, tok).check(t, user, true) {
				ok++
			} else {
				fresh++
			}
		}
	}
	var failures uint64
	for i := range f.replicas {
		failures += f.replicas[i].Load().m.Stats().StoreFailures
	}
	if ok < users || failures == 0 {
		t.Fatalf("during the outage: %d served, %d store failures", ok, failures)
	}
	t.Logf("during the outage: %d served, %d asked for a fresh token, %d store failures", ok, fresh, failures)

	if err := f.redis.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.env.Clock.Advance(1100 * time.Millisecond) // the replicas leave the store aside for a second after a failure
	before := f.calls("CreateTokenWithIAM")
	tok := f.env.IdP.Token("after")
	var wg sync.WaitGroup
	for r := range 6 {
		wg.Go(func() { f.get(r, tok).check(t, "after", false) })
	}
	wg.Wait()
	if got := f.calls("CreateTokenWithIAM") - before; got != 1 {
		t.Fatalf("%d exchanges for a new user after Redis came back, want 1", got)
	}
}

// Sessions in Redis overwritten with another user's sealed session, or
// with garbage: a replica that does not hold the user never serves another
// user's credentials; it asks for a fresh token, which works.
func TestFleetTamperedEntries(t *testing.T) {
	f := newFleet(t, 2)
	alice, bob := f.env.IdP.Token("alice"), f.env.IdP.Token("bob")
	f.get(0, alice).check(t, "alice", false)
	f.get(0, bob).check(t, "bob", false)
	ctx := context.Background()
	rdb := f.redis.Client()
	keys, err := rdb.Keys(ctx, "*:s").Result()
	if err != nil || len(keys) != 2 {
		t.Fatalf("session keys %v, %v", keys, err)
	}
	v0, _ := rdb.Get(ctx, keys[0]).Result()
	v1, _ := rdb.Get(ctx, keys[1]).Result()
	rdb.Set(ctx, keys[0], v1, time.Hour) // swapped between the two users
	rdb.Set(ctx, keys[1], v0, time.Hour)
	for range 3 {
		f.get(1, alice).check(t, "alice", true)
		f.get(1, bob).check(t, "bob", true)
	}
	rdb.Set(ctx, keys[0], "garbage", time.Hour)
	rdb.Set(ctx, keys[1], v0[:len(v0)/2], time.Hour)
	f.restart(1)
	f.get(1, alice).check(t, "alice", true)
	f.get(1, bob).check(t, "bob", true)
	if st := f.replicas[1].Load().store.Stats(); st.Rejected == 0 {
		t.Fatalf("no value was rejected: %+v", st)
	}
	f.get(1, f.env.IdP.Token("alice")).check(t, "alice", false)
	f.get(1, f.env.IdP.Token("bob")).check(t, "bob", false)
}

// A lease holder that dies mid-exchange releases by expiry: the waiting
// replica then exchanges.
func TestFleetDeadLeaseHolder(t *testing.T) {
	f := newFleet(t, 2)
	r := f.replicas[0].Load()
	ns := exchangeNamespace(f.env)
	key := exchange.StoreKey{Namespace: ns, User: exchange.UserKey{Issuer: f.env.IdP.Issuer(), Subject: "alice"}}
	if held, err := r.store.Acquire(context.Background(), key, "a-dead-holder", 300*time.Millisecond); err != nil || !held {
		t.Fatalf("Acquire: %t, %v", held, err)
	}
	f.get(1, f.env.IdP.Token("alice")).check(t, "alice", false)
	if c := f.calls("CreateTokenWithIAM"); c != 1 {
		t.Fatalf("%d exchanges, want 1", c)
	}
}

// exchangeNamespace is the namespace the fleet's exchanges share.
func exchangeNamespace(env *tiptest.Env) string {
	x, err := exchange.New(exchange.Options{
		ApplicationArn: env.ApplicationArn, AccessRoleArn: env.AccessRoleArn,
		ApplicationRoleArn: env.ApplicationRoleArn, Config: env.Config(),
	})
	if err != nil {
		panic(err)
	}
	return x.Namespace()
}

// Renewal reads first: inside the refresh window, a replica takes the
// newer credentials another replica already obtained instead of calling
// STS again.
func TestFleetRenewalReadsFirst(t *testing.T) {
	f := newFleet(t, 2)
	tok := f.env.IdP.Token("alice")
	k0 := f.get(0, tok)
	k1 := f.get(1, tok)
	k0.check(t, "alice", false)
	if k1.key != k0.key {
		t.Fatalf("replica 1 got other credentials (%s) than replica 0 (%s)", k1.key, k0.key)
	}
	f.env.Clock.Advance(inWindow)
	f.get(0, tok).check(t, "alice", false) // starts replica 0's renewal in the background
	eventually(t, "replica 0's renewal", func() bool { return f.calls("AssumeRole") == 2 })
	eventually(t, "the renewal to be saved", func() bool { return f.replicas[0].Load().m.Stats().InFlight == 0 })
	f.get(1, tok).check(t, "alice", false) // inside the window: replica 1 renews, reading first
	eventually(t, "replica 1's renewal", func() bool { return f.replicas[1].Load().m.Stats().InFlight == 0 })
	if a := f.calls("AssumeRole"); a != 2 {
		t.Fatalf("%d AssumeRole calls, want 2: replica 1 renewed again instead of reading replica 0's", a)
	}
	renewed := f.get(1, tok)
	renewed.check(t, "alice", false)
	if renewed.key == k0.key {
		t.Fatal("replica 1 still serves the old credentials")
	}
}
