// Command fleet runs several replicas of one service on this machine, with
// no AWS account, and shows them sharing their users' sessions through
// Redis: any replica serves any user, the fleet exchanges each user's token
// once, and a restarted replica finds its users' sessions in Redis.
//
// It starts tiptest (a local identity provider, IAM Identity Center and
// STS) and a Redis, then -replicas replicas, each a process of its own in
// all but name: its own middleware, its own redisstore.Store and Redis
// client (all under the same encryption key), its own HTTP server on a
// loopback port. Their handler calls STS GetCallerIdentity with the
// caller's aws.Config from ctxcreds.Config and answers which replica it is
// and which access key it used.
//
// A client then sends -requests concurrent requests for each of -users
// users, spread round-robin over the replicas; stops one replica and starts
// a new one in its place with empty memory; and sends the same round again.
// Every answer must be 200 with credentials that belong to the caller, and
// the whole fleet, restart included, must cost each user one
// CreateTokenWithIAM and one AssumeRole.
//
// The Redis is, in this order: the server at -redis ADDR; a redis-server
// from PATH started on a free loopback port without persistence and
// stopped at exit; or an embedded Redis in this process (miniredis), also
// chosen by -embedded.
//
// It prints what happened and exits 0 only when every check held.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssooidc"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/redis/go-redis/v9"

	"github.com/tipkit/tipkit/ctxcreds"
	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/redisstore"
	"github.com/tipkit/tipkit/tiptest"
)

// config is what the flags choose.
type config struct {
	replicas int    // replicas started
	users    int    // users of the client
	requests int    // concurrent requests per user and round
	redis    string // address of an existing Redis, or "" to start one
	embedded bool   // use the embedded Redis even when redis-server is on PATH
}

// storeTimeout bounds each call of a replica's Store to Redis. The
// default, 100 ms, suits a service whose Redis is near and whose CPUs are
// not saturated; here every replica, the client, the local AWS and perhaps
// Redis share this machine's CPUs (two, in continuous integration, with
// the race detector slowing everything several times over), and a call
// that times out makes its replica work alone for a moment, which turns a
// token another replica already exchanged into a 401.
const storeTimeout = 2 * time.Second

// requestTimeout bounds each request of the client.
const requestTimeout = 30 * time.Second

func main() {
	var c config
	flag.IntVar(&c.replicas, "replicas", 3, "replicas of the service")
	flag.IntVar(&c.users, "users", 20, "users of the client")
	flag.IntVar(&c.requests, "requests", 6, "concurrent requests per user and round")
	flag.StringVar(&c.redis, "redis", "", "address (host:port) of an existing Redis to use instead of starting one")
	flag.BoolVar(&c.embedded, "embedded", false, "use the embedded Redis (miniredis) even when redis-server is on PATH")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Stdout, c)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet: FAILED:", err)
		os.Exit(1)
	}
}

// answer is what the handler returns: the replica that served the request,
// the access key it used and the role session STS reported for it.
type answer struct {
	Replica   string `json:"replica"`
	AccessKey string `json:"access_key"`
	Arn       string `json:"arn"`
}

// whoAmI is the service's handler on the replica named name: nothing in it
// is about identity beyond reading the caller's configuration from the
// context.
func whoAmI(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cfg, ok := ctxcreds.Config(r.Context())
		if !ok {
			http.Error(w, "no AWS configuration", http.StatusInternalServerError)
			return
		}
		out, err := sts.NewFromConfig(cfg).GetCallerIdentity(r.Context(), &sts.GetCallerIdentityInput{})
		if err != nil {
			http.Error(w, "STS: "+err.Error(), http.StatusBadGateway)
			return
		}
		creds, _ := cfg.Credentials.Retrieve(r.Context())
		_ = json.NewEncoder(w).Encode(answer{Replica: name, AccessKey: creds.AccessKeyID, Arn: aws.ToString(out.Arn)})
	})
}

func run(ctx context.Context, w io.Writer, c config) error {
	if c.replicas < 1 || c.users < 1 || c.requests < 1 {
		return errors.New("-replicas, -users and -requests must be at least 1")
	}
	env, err := tiptest.NewEnv()
	if err != nil {
		return err
	}
	defer env.Close()
	rs, err := startRedis(ctx, c)
	if err != nil {
		return err
	}
	defer rs.stop()

	// What every replica shares: the encryption key of the sessions in
	// Redis (a secret: a real fleet reads it from its secret store) and the
	// prefix of their keys, random so that a run on an existing Redis
	// touches no one else's keys.
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	prefix := "tipkit-fleet-" + randomHex(4)
	defer rs.clean(prefix)

	users := make([]user, c.users)
	for i := range users {
		name := fmt.Sprintf("user%0*d", len(fmt.Sprint(c.users)), i+1)
		users[i] = user{name: name, token: env.IdP.Token(name)}
	}
	f := &fleet{env: env, redisAddr: rs.addr, key: key, prefix: prefix, meter: newMeter(env, users)}
	defer f.close()
	for range c.replicas {
		r, err := f.start(ctx, "127.0.0.1:0")
		if err != nil {
			return err
		}
		f.live = append(f.live, r)
	}

	fmt.Fprintf(w, "fleet: %d replicas of one service sharing sessions through Redis\n\n", c.replicas)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "redis\t%s\n", rs.about)
	fmt.Fprintf(tw, "identity provider\t%s\n", env.IdP.Issuer())
	fmt.Fprintf(tw, "local AWS\t%s\n", env.AWS.URL())
	fmt.Fprintf(tw, "replicas\t%s\n", f.addresses())
	tw.Flush()
	fmt.Fprintln(w)

	client := &http.Client{Timeout: requestTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: c.users * c.requests}}
	defer client.CloseIdleConnections()
	tallies := make([]tally, len(users))
	for i := range tallies {
		tallies[i].served = map[string]int{}
	}

	// Failed requests do not stop the run: the tables below show what the
	// fleet did all the same.
	var failed []string
	roundOf := func(name string) {
		n, err := f.round(ctx, client, users, c.requests, tallies)
		sent := len(users) * c.requests
		fmt.Fprintf(w, "%s: %d users x %d concurrent requests, round-robin over %s: ", name, len(users), c.requests, f.names())
		if n == sent {
			fmt.Fprintf(w, "%d answers 200\n", n)
		} else {
			fmt.Fprintf(w, "%d of %d answers 200\n", n, sent)
		}
		if err != nil {
			failed = append(failed, name+": "+err.Error())
		}
	}
	roundOf("round 1")

	// A rolling restart of one replica: it drains, stops, and a new
	// process takes its place with empty memory.
	i := min(1, len(f.live)-1)
	old, fresh, err := f.restart(ctx, i)
	if err != nil {
		return err
	}
	client.CloseIdleConnections()
	fmt.Fprintf(w, "restart: %s stopped; %s started in its place on %s with empty memory\n", old.name, fresh.name, fresh.addr)

	roundOf("round 2")
	fmt.Fprintln(w)

	failed = append(failed, f.report(w, users, tallies, fresh)...)
	kinds := rs.keys(ctx, prefix)
	created, assumed := env.AWS.Calls("CreateTokenWithIAM"), env.AWS.Calls("AssumeRole")
	fmt.Fprintf(w, "\nRedis holds this run's %s and %s\n", plural(kinds["s"], "sealed session"), plural(kinds["t"], "spent-token mark"))
	fmt.Fprintf(w, "AWS saw %d CreateTokenWithIAM and %d AssumeRole calls for %d requests, and %d AssumeRoleWithWebIdentity (the application role of each replica that exchanged)\n",
		created, assumed, 2*len(users)*c.requests, env.AWS.Calls("AssumeRoleWithWebIdentity"))
	if created != len(users) || assumed != len(users) {
		failed = append(failed, fmt.Sprintf("%d CreateTokenWithIAM and %d AssumeRole calls for %d users, want one of each per user", created, assumed, len(users)))
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	fmt.Fprintf(w, "\nOK: every answer was 200 with the caller's own credentials; the fleet, restart included, cost each user 1 CreateTokenWithIAM + 1 AssumeRole\n")
	return nil
}

// user is a user of the client and the one token it sends in every round.
type user struct {
	name, token string
}

// tally is what the client saw of one user's requests.
type tally struct {
	requests int
	served   map[string]int // requests per replica name
}

// fleet is the replicas of the service.
type fleet struct {
	env       *tiptest.Env
	redisAddr string
	key       []byte
	prefix    string
	meter     *meter

	started []*replica // in start order, stopped ones included
	live    []*replica // the ones serving, in the client's round-robin order
}

// replica is one process of the service, in all but name.
type replica struct {
	name  string
	addr  string
	url   string
	mw    *middleware.Middleware
	rdb   *redis.Client
	srv   *http.Server
	stats middleware.Stats // after it stopped
	alive bool
}

// start starts a replica listening on addr, or on a free port when addr
// cannot be bound, and adds it to the fleet's started ones; the caller
// puts it among the live ones.
func (f *fleet) start(ctx context.Context, addr string) (*replica, error) {
	r := &replica{name: fmt.Sprintf("r%d", len(f.started)+1)}
	// go-redis bounds socket reads and writes by the Store's timeout only
	// with ContextTimeoutEnabled; without its retries, a Redis that refuses
	// connections fails each call at once rather than at the timeout.
	r.rdb = redis.NewClient(&redis.Options{Addr: f.redisAddr, ContextTimeoutEnabled: true, MaxRetries: -1, DialerRetries: 1})
	store, err := redisstore.New(r.rdb, redisstore.Options{
		EncryptionKeys: [][]byte{f.key},
		Prefix:         f.prefix,
		Timeout:        storeTimeout,
	})
	if err != nil {
		_ = r.rdb.Close()
		return nil, err
	}
	// Ready when the store works with Redis (address, credentials,
	// permissions), as a readiness probe would have it before the replica
	// takes traffic: its first requests then find a connection open.
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = store.Check(pctx)
	cancel()
	if err != nil {
		_ = r.rdb.Close()
		return nil, fmt.Errorf("%s: %w", r.name, err)
	}
	// The replica needs no AWS keys: the application role, assumed with the
	// users' tokens, signs the exchange.
	base := f.env.Config()
	base.Credentials = nil
	r.mw, err = middleware.New(ctx, middleware.Options{
		Issuer:   f.env.IdP.Issuer(),
		Audience: []string{f.env.IdP.Audience()},
		Exchange: exchange.Options{
			ApplicationArn:     f.env.ApplicationArn,
			AccessRoleArn:      f.env.AccessRoleArn,
			ApplicationRoleArn: f.env.ApplicationRoleArn,
			Config:             base,
			SSOOIDCClient:      meteredOIDC{f.meter, ssooidc.NewFromConfig(base)},
			STSClient:          meteredSTS{f.meter, sts.NewFromConfig(base)},
			MaxAttempts:        2,
		},
		AWSConfig: base,
		Cache:     exchange.CacheOptions{Store: store},
		Realm:     "fleet",
	})
	if err != nil {
		_ = r.rdb.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		_ = r.mw.Close()
		_ = r.rdb.Close()
		return nil, err
	}
	r.addr = ln.Addr().String()
	r.url = "http://" + r.addr + "/whoami"
	r.srv = &http.Server{Handler: r.mw.Handler(whoAmI(r.name)), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	r.alive = true
	f.started = append(f.started, r)
	return r, nil
}

// stop drains r (its server answers the requests under way and its
// exchanges finish), then stops it and keeps its final counters.
func (r *replica) stop(ctx context.Context) {
	if !r.alive {
		return
	}
	r.alive = false
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = r.srv.Shutdown(ctx)
	for r.mw.Stats().InFlight > 0 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	r.stats = r.mw.Stats()
	_ = r.mw.Close()
	_ = r.rdb.Close()
}

// restart stops the live replica i and starts a new one in its place, on
// the same address when it is free.
func (f *fleet) restart(ctx context.Context, i int) (old, fresh *replica, err error) {
	old = f.live[i]
	old.stop(ctx)
	if fresh, err = f.start(ctx, old.addr); err != nil {
		return old, nil, err
	}
	f.live[i] = fresh
	return old, fresh, nil
}

// close stops every replica still running.
func (f *fleet) close() {
	for _, r := range f.started {
		r.stop(context.Background())
	}
}

// names returns the names of the live replicas, in round-robin order.
func (f *fleet) names() string {
	names := make([]string, len(f.live))
	for i, r := range f.live {
		names[i] = r.name
	}
	return strings.Join(names, " ")
}

// addresses returns the live replicas' names and addresses.
func (f *fleet) addresses() string {
	out := make([]string, len(f.live))
	for i, r := range f.live {
		out[i] = r.name + " " + r.addr
	}
	return strings.Join(out, ", ")
}

// round sends perUser concurrent requests for each user, request j of user
// u to live replica (u+j) mod the replicas, records the answers in
// tallies, and returns how many were 200 with the user's own credentials
// from the replica asked. The error lists the others.
func (f *fleet) round(ctx context.Context, client *http.Client, users []user, perUser int, tallies []tally) (int, error) {
	var (
		mu       sync.Mutex
		ok       int
		failures []string
		wg       sync.WaitGroup
	)
	for u, usr := range users {
		for j := range perUser {
			r := f.live[(u+j)%len(f.live)]
			wg.Go(func() {
				err := f.ask(ctx, client, r, usr)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failures = append(failures, err.Error())
					return
				}
				ok++
				tallies[u].requests++
				tallies[u].served[r.name]++
			})
		}
	}
	wg.Wait()
	if len(failures) > 0 {
		shown := failures[:min(len(failures), 3)]
		return ok, fmt.Errorf("%d requests failed: %s", len(failures), strings.Join(shown, "; "))
	}
	return ok, nil
}

// ask sends one request of u to r and checks that r answered 200 with
// credentials that belong to u.
func (f *fleet) ask(ctx context.Context, client *http.Client, r *replica, u user) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+u.token)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s on %s: %v", u.name, r.name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return fmt.Errorf("%s on %s: %v", u.name, r.name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s on %s: status %d: %s", u.name, r.name, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	var a answer
	if err := json.Unmarshal(body, &a); err != nil {
		return fmt.Errorf("%s on %s: %v", u.name, r.name, err)
	}
	if owner, _ := f.env.AWS.UserFor(a.AccessKey); owner != u.name {
		return fmt.Errorf("%s on %s: served with credentials of %q", u.name, r.name, owner)
	}
	if a.Replica != r.name {
		return fmt.Errorf("%s on %s: answered by %q", u.name, r.name, a.Replica)
	}
	return nil
}

// report prints the users' and the replicas' tables and returns the checks
// that failed: one CreateTokenWithIAM and one AssumeRole per user, and a
// restarted replica fresh that took its sessions from the Store and
// exchanged nothing.
func (f *fleet) report(w io.Writer, users []user, tallies []tally, fresh *replica) []string {
	var failed []string
	created, assumed := f.meter.counts()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "USERS\tREQUESTS\tSERVED BY\tCreateTokenWithIAM\tAssumeRole\n")
	// Consecutive users whose figures are the same share a row.
	type row struct {
		requests, created, assumed int
		served                     string
	}
	rowOf := func(u int) row {
		var served []string
		for _, r := range f.started {
			if tallies[u].served[r.name] > 0 {
				served = append(served, r.name)
			}
		}
		name := users[u].name
		return row{tallies[u].requests, created[name], assumed[name], strings.Join(served, " ")}
	}
	total := 0
	for first := 0; first < len(users); {
		r := rowOf(first)
		last := first
		for last+1 < len(users) && rowOf(last+1) == r {
			last++
		}
		who, each := users[first].name, ""
		if last > first {
			who, each = users[first].name+".."+users[last].name, " each"
		}
		fmt.Fprintf(tw, "%s\t%d%s\t%s\t%d%s\t%d%s\n", who, r.requests, each, r.served, r.created, each, r.assumed, each)
		if r.created != 1 || r.assumed != 1 {
			failed = append(failed, fmt.Sprintf("%s: %d CreateTokenWithIAM and %d AssumeRole calls, want 1 each", who, r.created, r.assumed))
		}
		for u := first; u <= last; u++ {
			total += tallies[u].requests
		}
		first = last + 1
	}
	var allCreated, allAssumed int
	for _, n := range created {
		allCreated += n
	}
	for _, n := range assumed {
		allAssumed += n
	}
	fmt.Fprintf(tw, "all users\t%d\t\t%d\t%d\n", total, allCreated, allAssumed)
	tw.Flush()
	fmt.Fprintln(w)

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "REPLICA\tADDRESS\tREQUESTS\tEXCHANGES\tSESSIONS FROM REDIS\tSTORE FAILURES\n")
	for _, r := range f.started {
		st, note := r.stats, "\t(stopped)"
		if r.alive {
			st, note = r.mw.Stats(), ""
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d%s\n", r.name, r.addr, st.Requests, st.Exchanges, st.SharedHits, st.StoreFailures, note)
		if r == fresh && (st.SharedHits == 0 || st.Exchanges > 0) {
			failed = append(failed, fmt.Sprintf("%s, restarted: %d sessions from Redis and %d exchanges, want some and none", r.name, st.SharedHits, st.Exchanges))
		}
	}
	tw.Flush()
	return failed
}

// meter counts, per user, the exchange's calls to AWS that the replicas
// make: it wraps each replica's SSO OIDC and STS clients. A service has no
// use for it; this program prints what it counts.
type meter struct {
	env     *tiptest.Env
	byToken map[string]string // the client's tokens and their users; read only

	mu               sync.Mutex
	created, assumed map[string]int
}

func newMeter(env *tiptest.Env, users []user) *meter {
	m := &meter{env: env, byToken: map[string]string{}, created: map[string]int{}, assumed: map[string]int{}}
	for _, u := range users {
		m.byToken[u.token] = u.name
	}
	return m
}

// counts returns copies of the calls counted per user.
func (m *meter) counts() (created, assumed map[string]int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	created, assumed = map[string]int{}, map[string]int{}
	for k, v := range m.created {
		created[k] = v
	}
	for k, v := range m.assumed {
		assumed[k] = v
	}
	return created, assumed
}

func (m *meter) count(counts map[string]int, user string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	counts[user]++
}

// meteredOIDC counts each CreateTokenWithIAM call for the user whose token
// it trades (a refresh grant, which has none, counts for "(refresh)").
type meteredOIDC struct {
	m *meter
	c exchange.SSOOIDCClient
}

func (c meteredOIDC) CreateTokenWithIAM(ctx context.Context, in *ssooidc.CreateTokenWithIAMInput, optFns ...func(*ssooidc.Options)) (*ssooidc.CreateTokenWithIAMOutput, error) {
	u, ok := c.m.byToken[aws.ToString(in.Assertion)]
	if !ok {
		u = "(refresh)"
	}
	c.m.count(c.m.created, u)
	return c.c.CreateTokenWithIAM(ctx, in, optFns...)
}

// meteredSTS counts each AssumeRole call for the user the local AWS issued
// its credentials to (a failed call counts for "(failed)").
type meteredSTS struct {
	m *meter
	c exchange.STSClient
}

func (c meteredSTS) AssumeRole(ctx context.Context, in *sts.AssumeRoleInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleOutput, error) {
	out, err := c.c.AssumeRole(ctx, in, optFns...)
	u := "(failed)"
	if err == nil && out.Credentials != nil {
		if owner, ok := c.m.env.AWS.UserFor(aws.ToString(out.Credentials.AccessKeyId)); ok {
			u = owner
		}
	}
	c.m.count(c.m.assumed, u)
	return out, err
}

// plural returns n and word, with an s unless n is 1.
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
