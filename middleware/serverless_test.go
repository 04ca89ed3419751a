package middleware_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/tipkit/tipkit/dynamostore"
	"github.com/tipkit/tipkit/dynamostore/dynamotest"
	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/tiptest"
)

// served is what credsHandler answered: the access key the handler was
// given, when those credentials expire, and the caller's subject.
type served struct {
	code    int
	key     string
	sub     string
	owner   string
	expires time.Time
	body    string
	retry   string
}

func serveCreds(env *tiptest.Env, h http.Handler, token string) served {
	w := serve(h, request(token))
	s := served{code: w.Code, body: w.Body.String(), retry: w.Header().Get("Retry-After")}
	var body map[string]string
	if w.Code == http.StatusOK && json.Unmarshal(w.Body.Bytes(), &body) == nil {
		s.key, s.sub = body["key"], body["sub"]
		s.expires, _ = time.Parse(time.RFC3339Nano, body["expires"])
		s.owner, _ = env.AWS.UserFor(s.key)
	}
	return s
}

// valid fails t unless s is a 200 with user's own credentials, valid at
// the time of env's clock.
func (s served) valid(t testing.TB, env *tiptest.Env, user string) {
	t.Helper()
	switch {
	case s.code != http.StatusOK:
		t.Fatalf("%s: %d %s", user, s.code, s.body)
	case s.owner != user || s.sub != user:
		t.Fatalf("a request of %s was served with credentials of %q (sub %q)", user, s.owner, s.sub)
	case !s.expires.After(env.Clock.Now()):
		t.Fatalf("%s was served credentials that expired at %v, now %v", user, s.expires, env.Clock.Now())
	}
}

// exchangeCalls counts every AWS call but the handler's own GetCallerIdentity.
func exchangeCalls(env *tiptest.Env) (n int) {
	for op, c := range env.AWS.CallCounts() {
		if op != "GetCallerIdentity" {
			n += c
		}
	}
	return n
}

// dynamoStore returns a dynamostore on table of srv, checked, sealing with
// key. Its Timeout allows for the race detector.
func dynamoStore(t *testing.T, srv *dynamotest.Server, table string, key []byte) *dynamostore.Store {
	t.Helper()
	store, err := dynamostore.New(srv.Client(), dynamostore.Options{Table: table, EncryptionKeys: [][]byte{key}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	return store
}

func newDynamo(t *testing.T, table string) (*dynamotest.Server, []byte) {
	t.Helper()
	srv := dynamotest.Start(t)
	if err := dynamostore.CreateTable(context.Background(), srv.Client(), table); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return srv, key
}

// A Lambda instance frozen past its user's credentials' expiry (no
// request and no background renewal ran meanwhile) serves the user's next
// request with credentials renewed before it is served: 200, the user's
// own credentials, valid now; never the expired ones.
func TestServerlessThawRenewsOnRequest(t *testing.T) {
	env := tiptest.New(t)
	h := newMiddleware(t, env).Handler(whoAmI(env))
	tok := env.IdP.Token("alice")
	first := serveCreds(env, h, tok)
	first.valid(t, env, "alice")

	// Frozen: past the expiry, beyond the refresh window, nothing ran.
	env.Clock.Advance(first.expires.Sub(env.Clock.Now()) + exchange.DefaultBackgroundRefreshWindow)
	before := env.AWS.Calls("AssumeRole")
	thawed := serveCreds(env, h, tok)
	thawed.valid(t, env, "alice")
	if thawed.key == first.key {
		t.Fatalf("the thawed instance served the expired credentials %s", first.key)
	}
	if n := env.AWS.Calls("AssumeRole") - before; n != 1 {
		t.Fatalf("%d AssumeRole calls on thaw, want 1 (a renewal on the request path)", n)
	}
	// A fresh token after the freeze is served as well.
	serveCreds(env, h, env.IdP.Token("alice")).valid(t, env, "alice")
}

// Two instances share sessions in DynamoDB. One serves a user and is
// frozen; the other renews the user meanwhile. Thawed, the first serves
// the user's next request with the renewed session it loads from the
// table: 200, valid credentials, no AWS call.
func TestServerlessThawLoadsSharedSession(t *testing.T) {
	srv, key := newDynamo(t, "tipkit-thaw")
	env := tiptest.New(t)
	instance := func() http.Handler {
		store := dynamoStore(t, srv, "tipkit-thaw", key)
		return newMiddleware(t, env, func(o *middleware.Options) { o.Cache.Store = store }).Handler(whoAmI(env))
	}
	frozen, other := instance(), instance()
	tok := env.IdP.Token("alice")
	first := serveCreds(env, frozen, tok)
	first.valid(t, env, "alice")

	env.Clock.Advance(first.expires.Sub(env.Clock.Now()) + exchange.DefaultBackgroundRefreshWindow)
	renewed := serveCreds(env, other, tok)
	renewed.valid(t, env, "alice")
	if renewed.key == first.key {
		t.Fatalf("the other instance served the expired credentials %s", first.key)
	}

	before := exchangeCalls(env)
	thawed := serveCreds(env, frozen, tok)
	thawed.valid(t, env, "alice")
	if thawed.key != renewed.key {
		t.Fatalf("the thawed instance served %s, want the shared session's %s", thawed.key, renewed.key)
	}
	if n := exchangeCalls(env) - before; n != 0 {
		t.Fatalf("the thawed instance made %d AWS calls, want none: %v", n, env.AWS.CallCounts())
	}
}

// heldClient holds every AWS call made while armed until released,
// whatever the call's context says: a connection that went dead while the
// instance was frozen, answered only when released.
type heldClient struct {
	next    aws.HTTPClient
	armed   atomic.Bool
	held    chan struct{} // one send per call held
	release chan struct{}
}

func (c *heldClient) Do(r *http.Request) (*http.Response, error) {
	if c.armed.Load() {
		c.held <- struct{}{}
		<-c.release
	}
	return c.next.Do(r)
}

// A flight under way when the instance froze, on a connection that never
// answers, does not hold the user's later requests past Cache.Timeout:
// they are answered 503 with Retry-After, and once AWS answers again (and
// the failure is no longer remembered) 200 with valid credentials. The
// flight is a user's first exchange, or a renewal started in the refresh
// window just before the freeze, the credentials expiring meanwhile.
func TestServerlessStuckFlightBoundedByTimeout(t *testing.T) {
	for _, renewal := range []bool{false, true} {
		t.Run(map[bool]string{false: "exchange", true: "renewal"}[renewal], func(t *testing.T) {
			env := tiptest.New(t)
			const timeout = 300 * time.Millisecond
			hc := &heldClient{next: env.AWS.HTTPClient(), held: make(chan struct{}, 16), release: make(chan struct{})}
			var once sync.Once
			t.Cleanup(func() { once.Do(func() { close(hc.release) }) })
			m := newMiddleware(t, env, func(o *middleware.Options) {
				o.Cache.Timeout = timeout
				o.Exchange.Config.HTTPClient = hc // the handler's own calls are not held
			})
			h := m.Handler(whoAmI(env))
			tok := env.IdP.Token("alice")

			firstDone := make(chan served, 1)
			if renewal {
				first := serveCreds(env, h, tok)
				first.valid(t, env, "alice")
				// In the refresh window: served at once, renewal in the
				// background, stuck.
				env.Clock.Advance(first.expires.Sub(env.Clock.Now()) - exchange.DefaultBackgroundRefreshWindow/2)
				hc.armed.Store(true)
				serveCreds(env, h, tok).valid(t, env, "alice")
				<-hc.held
				// Frozen past the expiry.
				env.Clock.Advance(exchange.DefaultBackgroundRefreshWindow)
				firstDone <- served{code: http.StatusServiceUnavailable, retry: "-"}
			} else {
				hc.armed.Store(true)
				go func() { firstDone <- serveCreds(env, h, tok) }()
				<-hc.held
			}

			answers := make(chan served, 3)
			start := time.Now()
			for range 3 {
				go func() { answers <- serveCreds(env, h, tok) }()
			}
			for range 3 {
				a := <-answers
				if a.code != http.StatusServiceUnavailable || a.retry == "" {
					t.Errorf("a request behind a stuck flight: %d (Retry-After %q) %s, want 503 with Retry-After", a.code, a.retry, a.body)
				}
			}
			a := <-firstDone
			took := time.Since(start)
			t.Logf("requests behind a stuck flight answered in %v (Cache.Timeout %v)", took.Round(time.Millisecond), timeout)
			if a.code != http.StatusServiceUnavailable || a.retry == "" {
				t.Errorf("the request of the stuck flight: %d (Retry-After %q) %s, want 503 with Retry-After", a.code, a.retry, a.body)
			}
			if took > 5*timeout {
				t.Errorf("requests behind a stuck flight answered after %v, want within about Cache.Timeout (%v)", took, timeout)
			}

			// AWS answers again: once the stuck flight has ended and its
			// failure is no longer remembered, the user is served.
			hc.armed.Store(false)
			once.Do(func() { close(hc.release) })
			eventually(t, "the stuck flight to end", func() bool { return m.Stats().InFlight == 0 })
			env.Clock.Advance(exchange.DefaultUnavailableTTL + time.Second)
			serveCreds(env, h, env.IdP.Token("alice")).valid(t, env, "alice")
		})
	}
}

// countingStore counts the calls made to an exchange.Store.
type countingStore struct {
	exchange.Store
	n atomic.Int64
}

func (s *countingStore) Load(ctx context.Context, key exchange.StoreKey) (*exchange.Session, error) {
	s.n.Add(1)
	return s.Store.Load(ctx, key)
}

func (s *countingStore) Save(ctx context.Context, key exchange.StoreKey, sess *exchange.Session) error {
	s.n.Add(1)
	return s.Store.Save(ctx, key, sess)
}

func (s *countingStore) ClaimToken(ctx context.Context, key exchange.StoreKey, id, claim string, until time.Time) (bool, error) {
	s.n.Add(1)
	return s.Store.ClaimToken(ctx, key, id, claim, until)
}

func (s *countingStore) ReleaseToken(ctx context.Context, key exchange.StoreKey, id, claim string) error {
	s.n.Add(1)
	return s.Store.ReleaseToken(ctx, key, id, claim)
}

func (s *countingStore) Acquire(ctx context.Context, key exchange.StoreKey, lease string, ttl time.Duration) (bool, error) {
	s.n.Add(1)
	return s.Store.Acquire(ctx, key, lease, ttl)
}

func (s *countingStore) Release(ctx context.Context, key exchange.StoreKey, lease string) error {
	s.n.Add(1)
	return s.Store.Release(ctx, key, lease)
}

// With DynamoDB unreachable, users held in memory are served with no AWS
// and no store call, and a new user is served after one exchange, with at
// most one store call per request. The new user's latency is logged.
func TestServerlessDynamoDown(t *testing.T) {
	srv, key := newDynamo(t, "tipkit-down")
	env := tiptest.New(t)
	store := &countingStore{Store: dynamoStore(t, srv, "tipkit-down", key)}
	h := newMiddleware(t, env, func(o *middleware.Options) { o.Cache.Store = store }).Handler(whoAmI(env))
	known := []string{"alice", "bob"}
	tokens := map[string]string{}
	for _, u := range known {
		tokens[u] = env.IdP.Token(u)
		serveCreds(env, h, tokens[u]).valid(t, env, u)
	}

	srv.Stop()
	before, calls := exchangeCalls(env), store.n.Load()
	for _, u := range known {
		serveCreds(env, h, tokens[u]).valid(t, env, u)
	}
	if n := exchangeCalls(env) - before; n != 0 {
		t.Errorf("known users with DynamoDB stopped: %d AWS calls, want none: %v", n, env.AWS.CallCounts())
	}
	if n := store.n.Load() - calls; n != 0 {
		t.Errorf("known users with DynamoDB stopped: %d store calls, want none", n)
	}

	for i := range 3 {
		user := fmt.Sprintf("new%d", i)
		before, calls := env.AWS.Calls("CreateTokenWithIAM"), store.n.Load()
		start := time.Now()
		s := serveCreds(env, h, env.IdP.Token(user))
		t.Logf("new user %s with DynamoDB stopped: %d in %v, %d store calls", user, s.code, time.Since(start).Round(time.Millisecond), store.n.Load()-calls)
		s.valid(t, env, user)
		if n := env.AWS.Calls("CreateTokenWithIAM") - before; n != 1 {
			t.Errorf("new user %s: %d CreateTokenWithIAM calls, want 1", user, n)
		}
		if n := store.n.Load() - calls; n > 1 {
			t.Errorf("new user %s with DynamoDB stopped: %d store calls, want at most 1", user, n)
		}
	}
}

// swallow listens on loopback and takes every request without ever
// answering, as a DynamoDB endpoint behind a black-holing network does.
func swallow(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(io.Discard, c) })
		}
	})
	return "http://" + ln.Addr().String()
}

// With a DynamoDB endpoint that takes requests and never answers, each
// call of the store fails as a timeout after dynamostore's default Timeout
// (1 s), and the middleware serves every new user: the first ones after
// one store call (one timeout) each, then, the store left aside, with none.
func TestServerlessDynamoSwallowing(t *testing.T) {
	client := dynamodb.New(dynamodb.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(swallow(t)),
		Credentials:      aws.AnonymousCredentials{},
		RetryMaxAttempts: 1,
	})
	ds, err := dynamostore.New(client, dynamostore.Options{Table: "tipkit-swallowed", EncryptionKeys: [][]byte{make([]byte, 32)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ds.Load(context.Background(), exchange.StoreKey{Namespace: "n", User: exchange.UserKey{Issuer: "https://idp.example", Subject: "s"}}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Load from an endpoint that never answers: %v, want an error matching context.DeadlineExceeded", err)
	}
	env := tiptest.New(t)
	store := &countingStore{Store: ds}
	h := newMiddleware(t, env, func(o *middleware.Options) { o.Cache.Store = store }).Handler(whoAmI(env))
	for i, want := range []int64{1, 1, 1, 0, 0} {
		user := fmt.Sprintf("new%d", i)
		calls := store.n.Load()
		start := time.Now()
		s := serveCreds(env, h, env.IdP.Token(user))
		t.Logf("new user %s, DynamoDB swallowing requests: %d in %v, %d store calls", user, s.code, time.Since(start).Round(time.Millisecond), store.n.Load()-calls)
		s.valid(t, env, user)
		if n := store.n.Load() - calls; n != want {
			t.Errorf("new user %s: %d store calls, want %d", user, n, want)
		}
	}
}
