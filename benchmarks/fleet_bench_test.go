package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tipkit/tipkit/benchmarks/internal/fixture"
	"github.com/tipkit/tipkit/benchmarks/internal/fleet"
	"github.com/tipkit/tipkit/dynamostore/dynamotest"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/redisstore/redistest"
	"github.com/tipkit/tipkit/tiptest"
)

// The fleet benchmarks: what a replica pays for a user it has never seen
// when another replica already put the user's session in the shared store
// (Redis: one GET; DynamoDB: one GetItem; then an AES-GCM open, and the
// token's signature check, which every replica does once per token), next
// to a full exchange of a new user with 20 ms added to each AWS call. They
// share a tiptest environment, a redis-server and a dynalite of their own,
// each started at first use and stopped by TestMain.

// exchangeLatency is the latency added to CreateTokenWithIAM and
// AssumeRole in BenchmarkFleetFullExchange20ms.
const exchangeLatency = 20 * time.Millisecond

// missPoolSize is the most users whose sessions BenchmarkFleetMissFromRedis
// puts in Redis: a new replica takes over each time they are used up.
const missPoolSize = 1024

// fleetTable is the DynamoDB table of the fleet benchmarks.
const fleetTable = "tipkit-bench"

var (
	dynamoOnce sync.Once
	fleetDyn   *dynamotest.Server
	dynamoErr  error

	fleetOnce  sync.Once
	fleetEnv   *tiptest.Env
	fleetRedis *redistest.Server
	fleetErr   error
	fleetKey   = []byte("tipkit benchmarks: fleet key 32B")

	// fleetUsers numbers the new users of the fleet benchmarks: a name is
	// never used twice in a process, so a new user never finds a session
	// in Redis.
	fleetUsers atomic.Int64

	// fullExchange is the latest BenchmarkFleetFullExchange20ms/fleet's
	// p50 and p99, for the miss's ratios.
	fullExchange struct {
		sync.Mutex
		p50, p99 time.Duration
	}
)

// theFleet returns the fleet benchmarks' tiptest environment and
// redis-server. It skips b when redis-server is not installed (fails it
// when TIPKIT_REQUIRE_REDIS is 1).
func theFleet(tb testing.TB) (*tiptest.Env, *redistest.Server) {
	tb.Helper()
	fleetOnce.Do(func() {
		if fleetRedis, fleetErr = redistest.Run(context.Background()); fleetErr != nil {
			return
		}
		fleetEnv, fleetErr = tiptest.NewEnv()
	})
	switch {
	case errors.Is(fleetErr, redistest.ErrNotInstalled) && os.Getenv(redistest.RequireEnv) != "1":
		tb.Skip(fleetErr.Error())
	case fleetErr != nil:
		tb.Fatal(fleetErr)
	}
	return fleetEnv, fleetRedis
}

// theDynamo returns the fleet benchmarks' dynalite, its table created. It
// skips tb when dynalite is not installed (fails it when
// TIPKIT_REQUIRE_DYNALITE is 1).
func theDynamo(tb testing.TB) *dynamotest.Server {
	tb.Helper()
	dynamoOnce.Do(func() {
		if fleetDyn, dynamoErr = dynamotest.Run(context.Background()); dynamoErr != nil {
			return
		}
		dynamoErr = fleet.CreateTable(context.Background(), fleetDyn.Client(), fleetTable)
	})
	switch {
	case errors.Is(dynamoErr, dynamotest.ErrNotInstalled) && os.Getenv(dynamotest.RequireEnv) != "1":
		tb.Skip(dynamoErr.Error())
	case dynamoErr != nil:
		tb.Fatal(dynamoErr)
	}
	return fleetDyn
}

// closeFleet stops what theFleet and theDynamo started; TestMain calls it.
func closeFleet() {
	if fleetDyn != nil {
		fleetDyn.Close()
	}
	if fleetEnv != nil {
		_ = fleetEnv.Close()
	}
	if fleetRedis != nil {
		fleetRedis.Close()
	}
}

// benchReplica is one replica of the fleet benchmarks: a middleware with
// a Store of its own on the shared store (nil store: a replica alone).
type benchReplica struct {
	m     *middleware.Middleware
	h     http.Handler
	store *fleet.Store
	close func()
}

// Stores of the fleet benchmarks' replicas.
const (
	storeNone   = ""
	storeRedis  = "redis"
	storeDynamo = "dynamodb"
)

// benchStore returns how a replica opens a Store on the shared store
// named store, with the stores' default timeout (100 ms), as in
// production.
func benchStore(b *testing.B, store string) fleet.NewStore {
	b.Helper()
	switch store {
	case storeRedis:
		_, srv := theFleet(b)
		return fleet.Redis(srv.Addr(), 0)
	case storeDynamo:
		return fleet.DynamoDB(theDynamo(b).Client, fleetTable, 0)
	}
	b.Fatalf("unknown store %q", store)
	return nil
}

func newBenchReplica(b *testing.B, store string) *benchReplica {
	b.Helper()
	env, _ := theFleet(b)
	r := &benchReplica{close: func() {}}
	edit := func(*middleware.Options) {}
	if store != storeNone {
		st, err := benchStore(b, store)(fleetKey)
		if err != nil {
			b.Fatal(err)
		}
		r.store, r.close = st, func() { _ = st.Close() }
		edit = func(o *middleware.Options) { o.Cache.Store = st.Store }
	}
	m, err := fixture.New(env, edit)
	if err != nil {
		b.Fatal(err)
	}
	r.m, r.h = m, m.Handler(bareHandler)
	close := r.close
	r.close = func() { _ = m.Close(); close() }
	return r
}

// newUsers returns tokens of n users the fleet benchmarks never used.
func newUsers(env *tiptest.Env, group string, n int) []string {
	first := int(fleetUsers.Add(int64(n))) - n
	return fixture.Mint(env, n, "RS256", func(i int) string { return fixture.User(group, first+i) })
}

// timedRequests serves req(i) through h() for i in [0, b.N), timing each,
// and returns the latencies sorted. before, when set, runs with the timer
// stopped ahead of every every-th request, the first included (stopping
// the timer reads the memory statistics, which stops the world: not for
// every request). An answer other than 204 fails b, unless failed is set:
// it is then given the request's index and answer, and the loop goes on.
func timedRequests(b *testing.B, h func() http.Handler, req func(i int) *http.Request, every int, before func(), failed func(i int, w *sink)) (cost, []time.Duration) {
	lat := make([]time.Duration, b.N)
	w := newSink()
	c := timed(b, func() {
		for i := range b.N {
			if before != nil && i%every == 0 {
				b.StopTimer()
				before()
				b.StartTimer()
			}
			r, hh := req(i), h()
			w.code = 0
			start := time.Now()
			hh.ServeHTTP(w, r)
			lat[i] = time.Since(start)
			switch {
			case w.code == http.StatusNoContent:
			case failed != nil:
				failed(i, w)
			default:
				b.Fatalf("request %d answered %d (%s)", i, w.code, w.h.Get("WWW-Authenticate"))
			}
		}
	})
	slices.Sort(lat)
	return c, lat
}

// pct returns the p-th percentile (0 < p <= 100) of sorted.
func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func reportLatency(b *testing.B, lat []time.Duration) {
	b.ReportMetric(float64(pct(lat, 50).Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(pct(lat, 99).Nanoseconds()), "p99-ns")
}

// BenchmarkFleetFullExchange20ms is the first request of a new user, with
// 20 ms added to each CreateTokenWithIAM and AssumeRole: the token's
// signature check, one exchange, one AssumeRole. Under fleet, the replica
// has a Store on Redis, as a fleet's replicas do (the user is new to the
// whole fleet: it also looks the user up, takes the user's lease, claims
// the token, saves the session and releases the lease); under alone, it
// has none. Each operation's token is of a user never seen, minted before
// the timer starts; the replica's first request, which assumes the
// application role, is not timed. It reports p50-ns and p99-ns, and
// aws-calls/op (2).
func BenchmarkFleetFullExchange20ms(b *testing.B) {
	for _, shared := range []bool{true, false} {
		name := map[bool]string{true: "fleet", false: "alone"}[shared]
		b.Run(name, func(b *testing.B) {
			env, _ := theFleet(b)
			r := newBenchReplica(b, map[bool]string{true: storeRedis, false: storeNone}[shared])
			defer r.close()
			if err := expect(r.h, request(newUsers(env, "open", 1)[0])); err != nil {
				b.Fatal(err)
			}
			toks := newUsers(env, "full", b.N)
			for _, op := range []string{"CreateTokenWithIAM", "AssumeRole"} {
				env.AWS.SetFault(op, tiptest.Fault{Latency: exchangeLatency}) // Times 0: every call until cleared
			}
			defer env.AWS.ClearFaults()
			calls := fixture.AWSCalls(env)
			_, lat := timedRequests(b, func() http.Handler { return r.h }, func(i int) *http.Request { return request(toks[i]) }, 1, nil, nil)
			b.ReportMetric(float64(fixture.AWSCalls(env)-calls)/float64(b.N), "aws-calls/op")
			reportLatency(b, lat)
			if shared {
				fullExchange.Lock()
				fullExchange.p50, fullExchange.p99 = pct(lat, 50), pct(lat, 99)
				fullExchange.Unlock()
			}
		})
	}
}

// missPool is the users whose sessions are in a store, with their
// tokens: the ones the replica that exchanged them saw. It grows as
// BenchmarkFleetMissFromRedis and BenchmarkFleetMissFromDynamoDB need, up
// to missPoolSize.
type missPool struct {
	writer *benchReplica // the replica that put them there
	opener string        // a user of the pool kept for each new replica's first request
	reqs   []*http.Request
}

// missPools are the pools of each store, by name.
var missPools struct {
	sync.Mutex
	m map[string]*missPool
}

// missUsers returns n requests (at most missPoolSize) of users whose
// sessions are in store, and the token of one more, all exchanged by
// another replica. With no AWS latency, about a millisecond each.
func missUsers(b *testing.B, store string, n int) ([]*http.Request, string) {
	b.Helper()
	env, _ := theFleet(b)
	n = min(n, missPoolSize)
	missPools.Lock()
	defer missPools.Unlock()
	if missPools.m == nil {
		missPools.m = map[string]*missPool{}
	}
	p := missPools.m[store]
	if p == nil {
		p = &missPool{}
		missPools.m[store] = p
	}
	if p.writer == nil {
		// Not closed: its Store's client stays open until the process
		// ends, which costs nothing.
		p.writer = newBenchReplica(b, store)
		p.opener = newUsers(env, "opener", 1)[0]
		if err := expect(p.writer.h, request(p.opener)); err != nil {
			b.Fatal(err)
		}
	}
	if more := n - len(p.reqs); more > 0 {
		toks := newUsers(env, "miss", more)
		reqs := make([]*http.Request, more)
		var wg sync.WaitGroup
		errs := make(chan error, more)
		next := atomic.Int64{}
		for range 8 {
			wg.Go(func() {
				for i := int(next.Add(1)) - 1; i < more; i = int(next.Add(1)) - 1 {
					reqs[i] = request(toks[i])
					if err := expect(p.writer.h, reqs[i]); err != nil {
						errs <- fmt.Errorf("putting user %d in %s: %w", i, store, err)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
		p.reqs = append(p.reqs, reqs...)
	}
	return p.reqs[:n], p.opener
}

// BenchmarkFleetRedisGet is one GET of a session another replica put in
// Redis, alone, with a replica's go-redis client options: the Redis part
// of a miss's floor (the other part is the raw signature check). It
// reports p50-ns and p99-ns, and bytes-per-value, the size of the sealed
// session.
func BenchmarkFleetRedisGet(b *testing.B) {
	_, srv := theFleet(b)
	missUsers(b, storeRedis, 1)
	client := fleet.NewClient(srv.Addr())
	defer client.Close()
	ctx := context.Background()
	keys, _, err := client.Scan(ctx, 0, "*:s", 1000).Result()
	if err != nil || len(keys) == 0 {
		b.Fatalf("no session in Redis: %v", err)
	}
	val, err := client.Get(ctx, keys[0]).Bytes()
	if err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, b.N)
	timed(b, func() {
		for i := range b.N {
			start := time.Now()
			if _, err := client.Get(ctx, keys[0]).Bytes(); err != nil {
				b.Fatal(err)
			}
			lat[i] = time.Since(start)
		}
	})
	slices.Sort(lat)
	reportLatency(b, lat)
	b.ReportMetric(float64(len(val)), "bytes-per-value")
}

// BenchmarkFleetMissFromRedis is the first request of a user to a replica
// that has never seen the user nor the token, while another replica
// already exchanged the token and put the user's session in Redis: the
// token's signature check (RS256), one Redis GET, an AES-GCM open and the
// session's decoding, no AWS call. Every timed request is a miss of the
// replica's memory: a pool of up to 1,024 users is put in Redis before the
// timer starts, and each time it is used up a new replica (new memory, a
// new Redis client) takes over, after a first request of another user,
// not timed, that fetches the IdP's keys and dials Redis.
//
// A miss whose Redis call outlasts the Store's timeout (redisstore's
// default, 100 ms, as in production) is not served from Redis: the
// replica works alone, sends the token another replica exchanged, and the
// request is answered 401. Such requests are counted in
// not-from-redis/op (0 on a quiet machine) and their latencies kept.
//
// It reports p50-ns and p99-ns; redis-loads/op (1) and aws-calls/op (0
// unless a miss was not served from Redis);
// ns-over-raw, the mean cost beyond the raw RS256 check measured in the
// same run (the Redis round trip, the open, the middleware); and, when
// BenchmarkFleetFullExchange20ms/fleet ran earlier in the same run (as
// -bench Fleet runs it), x-exchange-p50 and x-exchange-p99: the miss's
// percentile divided by the full exchange's.
func BenchmarkFleetMissFromRedis(b *testing.B) { benchmarkMiss(b, storeRedis) }

// BenchmarkFleetMissFromDynamoDB is BenchmarkFleetMissFromRedis with the
// sessions in a DynamoDB table (on dynalite, a Node.js engine on
// loopback, not DynamoDB's own latency): one GetItem instead of the
// GET. It reports the same metrics, under the names of
// BenchmarkFleetMissFromRedis (redis-loads/op counts the GetItem calls).
// It is skipped without dynalite.
func BenchmarkFleetMissFromDynamoDB(b *testing.B) { benchmarkMiss(b, storeDynamo) }

// benchmarkMiss is the miss served from store.
func benchmarkMiss(b *testing.B, store string) {
	env, _ := theFleet(b)
	reqs, opener := missUsers(b, store, b.N)
	var (
		cur      *benchReplica
		replicas []*benchReplica
	)
	defer func() {
		for _, r := range replicas {
			r.close()
		}
	}()
	fresh := func() {
		cur = newBenchReplica(b, store)
		replicas = append(replicas, cur)
		if err := expect(cur.h, request(opener)); err != nil {
			b.Fatal(err)
		}
	}
	calls := fixture.AWSCalls(env)
	failures, first := 0, ""
	failed := func(i int, w *sink) {
		if failures++; first == "" {
			first = fmt.Sprintf("request %d answered %d (%s)", i, w.code, w.h.Get("WWW-Authenticate"))
		}
	}
	c, lat := timedRequests(b, func() http.Handler { return cur.h }, func(i int) *http.Request { return reqs[i%len(reqs)] }, len(reqs), fresh, failed)
	var loads, shared, hits, storeFailures uint64
	for _, r := range replicas {
		loads += r.store.Stats().Loads
		st := r.m.Stats()
		shared += st.SharedHits
		hits += st.CacheHits + st.Hits
		storeFailures += st.StoreFailures
	}
	ops := uint64(b.N) + uint64(len(replicas)) // each replica's opening request included
	if hits != 0 || shared+uint64(failures) < ops {
		b.Fatalf("%d requests: %d sessions taken from %s, %d answers other than 204, %d memory hits; every request must be a miss, served from the store unless it failed",
			ops, shared, store, failures, hits)
	}
	if failures > 0 {
		// A store call beyond the Store's timeout (100 ms) on a busy
		// machine: the replica worked alone, sent the token another
		// replica had exchanged, and was refused. Counted, not hidden.
		b.Logf("%d of %d misses not served from %s (%d Store failures); first: %s", failures, b.N, store, storeFailures, first)
	}
	b.ReportMetric(float64(failures)/float64(b.N), "not-from-"+store+"/op")
	b.ReportMetric(float64(loads)/float64(ops), store+"-loads/op")
	b.ReportMetric(float64(fixture.AWSCalls(env)-calls)/float64(b.N), "aws-calls/op")
	reportLatency(b, lat)
	if raw := refs.raw["RS256"]; raw.ns > 0 {
		b.ReportMetric(c.ns-raw.ns, "ns-over-raw")
	}
	fullExchange.Lock()
	p50, p99 := fullExchange.p50, fullExchange.p99
	fullExchange.Unlock()
	if p50 > 0 {
		b.ReportMetric(float64(pct(lat, 50))/float64(p50), "x-exchange-p50")
		b.ReportMetric(float64(pct(lat, 99))/float64(p99), "x-exchange-p99")
	}
}

// fleetBenchGroup is the most users of one herd or cold start of
// BenchmarkFleetHerd and BenchmarkFleetColdStart: more operations run
// more groups, one after the other.
const fleetBenchGroup = 50

// fleetBenchPerUser is the concurrent first requests of each herd user.
const fleetBenchPerUser = 6

// BenchmarkFleetHerd is the first requests of new users reaching a fleet
// of 1, 3 or 6 replicas at once, on Redis and on DynamoDB (dynalite): an
// operation is one user, whose 6 concurrent first requests are spread
// over the replicas, in herds of up to 50 users, with 20 ms added to each
// CreateTokenWithIAM and AssumeRole. The Store timeout is the default,
// 100 ms. It reports p50-ns and p99-ns of the requests, exchanges/user
// (target 1) and non-200/op (requests per user not answered 200: a
// replica whose store calls time out works alone and its exchange is
// refused).
func BenchmarkFleetHerd(b *testing.B) {
	for _, store := range []string{storeRedis, storeDynamo} {
		for _, n := range []int{1, 3, 6} {
			b.Run(fmt.Sprintf("%s/replicas=%d", store, n), func(b *testing.B) {
				benchmarkFleet(b, store, n, func(env *tiptest.Env, f *fleet.Fleet, toks []string) fleet.Outcome {
					for _, op := range []string{"CreateTokenWithIAM", "AssumeRole"} {
						env.AWS.SetFault(op, tiptest.Fault{Latency: exchangeLatency})
					}
					defer env.AWS.ClearFaults()
					return fleet.Herd(context.Background(), env, f, fleet.Direct(f), toks, fleetBenchPerUser)
				})
			})
		}
	}
}

// BenchmarkFleetColdStart is a fresh replica's first request of a user
// whose session the store holds, on Redis and on DynamoDB (dynalite): a
// fleet of 1, 3 or 6 replicas serves up to 50 users, every replica is
// restarted (not timed), then 8 clients send each user's next request to
// a fresh replica. An operation is one user (ns/op includes the
// restarts; p50-ns and p99-ns are the requests'). It reports p50-ns,
// p99-ns, exchanges/user (target 0) and non-200/op.
func BenchmarkFleetColdStart(b *testing.B) {
	for _, store := range []string{storeRedis, storeDynamo} {
		for _, n := range []int{1, 3, 6} {
			b.Run(fmt.Sprintf("%s/replicas=%d", store, n), func(b *testing.B) {
				benchmarkFleet(b, store, n, func(env *tiptest.Env, f *fleet.Fleet, toks []string) fleet.Outcome {
					send := fleet.Direct(f)
					b.StopTimer()
					for u, tok := range toks {
						if _, err := send(context.Background(), u%f.Len(), tok); err != nil {
							b.Fatalf("user %d: %v", u, err)
						}
					}
					b.StartTimer()
					o, err := fleet.ColdStart(context.Background(), env, f, send, toks, 8)
					if err != nil {
						b.Fatal(err)
					}
					return o
				})
			})
		}
	}
}

// benchmarkFleet runs drive over groups of up to fleetBenchGroup new
// users, b.N users in all, each group on a new fleet of n replicas on
// store, and reports what the drives saw.
func benchmarkFleet(b *testing.B, store string, n int, drive func(*tiptest.Env, *fleet.Fleet, []string) fleet.Outcome) {
	env, _ := theFleet(b)
	newStore := benchStore(b, store)
	var (
		lat               []time.Duration
		non200, exchanges int
		firstErr          error
	)
	b.ResetTimer()
	for done := 0; done < b.N; {
		users := min(b.N-done, fleetBenchGroup)
		b.StopTimer()
		f, err := fleet.New(env, fleet.Options{Replicas: n, NewStore: newStore})
		if err != nil {
			b.Fatal(err)
		}
		send := fleet.Direct(f)
		for i := range n { // each replica fetches the IdP's keys and assumes the application role
			if _, err := send(context.Background(), i, newUsers(env, "fleet-open", 1)[0]); err != nil {
				b.Fatalf("replica %d: %v", i, err)
			}
		}
		toks := newUsers(env, "fleet", users)
		b.StartTimer()
		o := drive(env, f, toks)
		b.StopTimer()
		_ = f.Close()
		b.StartTimer()
		lat = append(lat, o.Lat...)
		non200 += o.Non200
		exchanges += o.CreateTokenWithIAM
		if firstErr == nil {
			firstErr = o.FirstErr
		}
		done += users
	}
	slices.Sort(lat)
	reportLatency(b, lat)
	b.ReportMetric(float64(exchanges)/float64(b.N), "exchanges/user")
	b.ReportMetric(float64(non200)/float64(b.N), "non-200/op")
	if firstErr != nil {
		b.Logf("%d requests not answered 200; first: %v", non200, firstErr)
	}
}
