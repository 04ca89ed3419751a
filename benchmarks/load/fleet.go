package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/tipkit/tipkit/benchmarks/internal/fleet"
	"github.com/tipkit/tipkit/dynamostore/dynamotest"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/redisstore/redistest"
)

// fleetResult is one row of the fleet table.
type fleetResult struct {
	Store    string // "redis" or "dynamodb"
	Name     string // "herd", "cold start" or "rolling restart"
	Replicas int
	Users    int
	fleet.Outcome
	FirstErr string
}

// fleetStore is a store the fleet's replicas can share sessions through.
type fleetStore struct {
	name string
	// start starts the store's engine; it returns how each replica opens
	// its Store and how to stop the engine, or an error wrapping errSkip
	// when the engine is not installed (and not required).
	start func(ctx context.Context, timeout time.Duration) (fleet.NewStore, func(), error)
}

// errSkip is the error of a fleetStore whose engine is not installed.
var errSkip = errors.New("not installed")

// fleetStores are the stores of the fleet scenario, in the order they run.
var fleetStores = []fleetStore{
	{"redis", func(ctx context.Context, timeout time.Duration) (fleet.NewStore, func(), error) {
		srv, err := redistest.Run(ctx)
		if errors.Is(err, redistest.ErrNotInstalled) && os.Getenv(redistest.RequireEnv) != "1" {
			return nil, nil, fmt.Errorf("%w: %v", errSkip, err)
		}
		if err != nil {
			return nil, nil, err
		}
		return fleet.Redis(srv.Addr(), timeout), srv.Close, nil
	}},
	{"dynamodb", func(ctx context.Context, timeout time.Duration) (fleet.NewStore, func(), error) {
		srv, err := dynamotest.Run(ctx)
		if errors.Is(err, dynamotest.ErrNotInstalled) && os.Getenv(dynamotest.RequireEnv) != "1" {
			return nil, nil, fmt.Errorf("%w: %v", errSkip, err)
		}
		if err != nil {
			return nil, nil, err
		}
		const table = "tipkit-load"
		if err := fleet.CreateTable(ctx, srv.Client(), table); err != nil {
			srv.Close()
			return nil, nil, err
		}
		return fleet.DynamoDB(srv.Client, table, timeout), srv.Close, nil
	}},
}

// fleetRun runs the fleet scenario on each store of fleetStores (Redis on
// a redis-server, DynamoDB on dynalite): for each replica count of
// -fleet-replicas, a herd of -fleet-users new users whose first
// -fleet-concurrency requests each reach the replicas at once, and a cold
// start (every replica restarted, then each of -fleet-users users the
// store holds sent to a fresh replica by -concurrency clients); then, on
// -restart-replicas replicas serving -fleet-users users, a rolling
// restart of every replica under load from -concurrency clients over
// -duration. Every replica is a real http.Server on 127.0.0.1 with a
// middleware and a Store client of its own, all on one store. A store
// whose engine is not installed is left out, with a line saying so,
// unless its TIPKIT_REQUIRE_ variable is 1.
func (d *driver) fleetRun(ctx context.Context, rep *report) error {
	for _, st := range fleetStores {
		if err := d.fleetOn(ctx, rep, st); err != nil {
			return fmt.Errorf("fleet on %s: %w", st.name, err)
		}
	}
	return nil
}

func (d *driver) fleetOn(ctx context.Context, rep *report, st fleetStore) error {
	newStore, stop, err := st.start(ctx, d.c.storeTimeout)
	if errors.Is(err, errSkip) {
		rep.FleetSkipped = append(rep.FleetSkipped, st.name+": "+err.Error())
		d.progress("fleet on %s: left out: %v", st.name, err)
		return nil
	}
	if err != nil {
		return err
	}
	defer stop()
	for _, n := range d.c.fleetReplicas {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := d.fleetHerd(ctx, st.name, newStore, n)
		if err != nil {
			return err
		}
		rep.Fleet = append(rep.Fleet, r)
	}
	for _, n := range d.c.fleetReplicas {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := d.fleetCold(ctx, st.name, newStore, n)
		if err != nil {
			return err
		}
		rep.Fleet = append(rep.Fleet, r)
	}
	r, err := d.fleetRestart(ctx, st.name, newStore, d.c.restartReplicas)
	if err != nil {
		return err
	}
	rep.Fleet = append(rep.Fleet, r)
	return nil
}

// httpFleet is a fleet whose replicas each listen on 127.0.0.1, with a
// client of its own.
type httpFleet struct {
	*fleet.Fleet
	urls    []string
	servers []*http.Server
	client  *http.Client
}

// startFleet starts n replicas, each behind an HTTP server, and a client
// keeping up to conns idle connections to each.
func (d *driver) startFleet(newStore fleet.NewStore, n, conns int) (*httpFleet, error) {
	f, err := fleet.New(d.env, fleet.Options{
		Replicas: n, NewStore: newStore,
		Edit: func(o *middleware.Options) { o.Cache.MaxInFlight = d.c.maxInFlight },
	})
	if err != nil {
		return nil, err
	}
	hf := &httpFleet{Fleet: f, client: &http.Client{
		Timeout: time.Minute,
		Transport: &http.Transport{
			Proxy:               nil, // loopback only, whatever the environment says
			MaxIdleConns:        n * conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		},
	}}
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			hf.close()
			return nil, err
		}
		s := &http.Server{Handler: f.Handler(i), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = s.Serve(ln) }()
		hf.servers = append(hf.servers, s)
		hf.urls = append(hf.urls, "http://"+ln.Addr().String()+"/")
	}
	return hf, nil
}

func (hf *httpFleet) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range hf.servers {
		_ = s.Shutdown(ctx)
	}
	hf.client.CloseIdleConnections()
	_ = hf.Fleet.Close()
}

// send is the fleet's Send over HTTP.
func (hf *httpFleet) send(ctx context.Context, i int, token string) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, hf.urls[i], nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	start := time.Now()
	resp, err := hf.client.Do(req)
	if err != nil {
		return time.Since(start), err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_ = resp.Body.Close()
	took := time.Since(start)
	if resp.StatusCode != http.StatusOK {
		return took, &fleet.StatusError{Code: resp.StatusCode, Body: strings.TrimSpace(string(body))}
	}
	return took, nil
}

// open sends each replica the first request of a user of its own, so
// that each fetches the IdP's keys and assumes the application role (once
// per process), and leaves conns[i] idle connections to replica i (opened
// by requests without a token, answered 401 without any work).
func (hf *httpFleet) open(ctx context.Context, d *driver, group string, conns []int) error {
	for i, url := range hf.urls {
		if _, err := hf.send(ctx, i, d.mint(group+"opener"+fmt.Sprint(i), 1)[0]); err != nil {
			return fmt.Errorf("opening replica %d: %w", i, err)
		}
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			first error
		)
		for range conns[i] {
			wg.Go(func() {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				var resp *http.Response
				if err == nil {
					resp, err = hf.client.Do(req)
				}
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					if resp.StatusCode != http.StatusUnauthorized {
						err = fmt.Errorf("opening connections: answered %s", resp.Status)
					}
				}
				if err != nil {
					mu.Lock()
					first = cmp.Or(first, err)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if first != nil {
			return first
		}
	}
	return nil
}

// fleetHerd sends the first requests of -fleet-users new users to n
// replicas at once.
func (d *driver) fleetHerd(ctx context.Context, store string, newStore fleet.NewStore, n int) (fleetResult, error) {
	users, per := d.c.fleetUsers, d.c.fleetPerUser
	conns := make([]int, n)
	for u := range users {
		for r := range per {
			conns[(u+r)%n]++
		}
	}
	hf, err := d.startFleet(newStore, n, max(conns[0], d.c.concurrency))
	if err != nil {
		return fleetResult{}, err
	}
	defer hf.close()
	group := fmt.Sprintf("%s-fleet%d-", store, n)
	if err := hf.open(ctx, d, group, conns); err != nil {
		return fleetResult{}, err
	}
	toks := d.mint(group+"herd", users)
	d.progress("fleet on %s: herd of %d users x %d concurrent requests over %d replicas", store, users, per, n)
	o := fleet.Herd(ctx, d.env, hf.Fleet, hf.send, toks, per)
	return d.fleetRecord(store, "herd", n, users, o), nil
}

// fleetCold has n replicas serve -fleet-users users, restarts every
// replica, then sends each user's next request to a fresh replica, from
// -concurrency clients.
func (d *driver) fleetCold(ctx context.Context, store string, newStore fleet.NewStore, n int) (fleetResult, error) {
	users := d.c.fleetUsers
	hf, err := d.startFleet(newStore, n, d.c.concurrency)
	if err != nil {
		return fleetResult{}, err
	}
	defer hf.close()
	group := fmt.Sprintf("%s-cold%d-", store, n)
	if err := hf.open(ctx, d, group, make([]int, n)); err != nil {
		return fleetResult{}, err
	}
	toks := d.mint(group+"user", users)
	for u, tok := range toks { // each user's session is in the store
		if _, err := hf.send(ctx, u%n, tok); err != nil {
			return fleetResult{}, fmt.Errorf("cold start: warming user %d: %w", u, err)
		}
	}
	d.progress("fleet on %s: cold start of %d replicas, %d users, %d clients", store, n, users, d.c.concurrency)
	o, err := fleet.ColdStart(ctx, d.env, hf.Fleet, hf.send, toks, d.c.concurrency)
	if err != nil {
		return fleetResult{}, err
	}
	return d.fleetRecord(store, "cold start", n, users, o), nil
}

// fleetRestart restarts each of n replicas in turn while -concurrency
// clients keep sending requests of -fleet-users users the fleet serves.
func (d *driver) fleetRestart(ctx context.Context, store string, newStore fleet.NewStore, n int) (fleetResult, error) {
	users := d.c.fleetUsers
	hf, err := d.startFleet(newStore, n, d.c.concurrency)
	if err != nil {
		return fleetResult{}, err
	}
	defer hf.close()
	group := fmt.Sprintf("%s-restart%d-", store, n)
	if err := hf.open(ctx, d, group, make([]int, n)); err != nil {
		return fleetResult{}, err
	}
	toks := d.mint(group+"user", users)
	for u, tok := range toks { // each user's session is in the store, and on one replica
		if _, err := hf.send(ctx, u%n, tok); err != nil {
			return fleetResult{}, fmt.Errorf("rolling restart: warming user %d: %w", u, err)
		}
	}
	gap := d.c.duration / time.Duration(n+1)
	d.progress("fleet on %s: rolling restart of %d replicas, one every %v, %d clients", store, n, gap, d.c.concurrency)
	o, err := fleet.RollingRestart(ctx, d.env, hf.Fleet, hf.send, toks, d.c.concurrency, gap)
	if err != nil {
		return fleetResult{}, err
	}
	return d.fleetRecord(store, "rolling restart", n, users, o), nil
}

func (d *driver) fleetRecord(store, name string, n, users int, o fleet.Outcome) fleetResult {
	r := fleetResult{Store: store, Name: name, Replicas: n, Users: users, Outcome: o}
	if o.FirstErr != nil {
		r.FirstErr = o.FirstErr.Error()
	}
	d.progress("fleet on %s: %s, %d replicas: %d requests, %s not 200, %d CreateTokenWithIAM, %d AssumeRole, p50 %v p99 %v; %+v",
		store, name, n, o.Requests, o.Non200String(), o.CreateTokenWithIAM, o.AssumeRole, o.Percentile(50), o.Percentile(99), o.Stats)
	return r
}

// fleetMarkdown returns the fleet table and its notes.
func (r *report) fleetMarkdown() string {
	var b strings.Builder
	for _, why := range r.FleetSkipped {
		fmt.Fprintf(&b, "Fleet on %s.\n", strings.Replace(why, ": ", ": left out (", 1)+")")
	}
	if len(r.Fleet) == 0 {
		return b.String()
	}
	if b.Len() > 0 {
		b.WriteString("\n")
	}
	c := r.Config
	fmt.Fprintf(&b, "Several replicas on one store, redis-server or dynalite (Store timeout %s):\n\n", storeTimeout(c.storeTimeout))
	b.WriteString("| store | fleet | replicas | users | requests | non-200 | CreateTokenWithIAM | AssumeRole | sessions from the store | store failures | p50 ms | p99 ms | max ms |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, x := range r.Fleet {
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %s | %d | %d | %d | %d | %s | %s | %s |\n",
			x.Store, x.Name, x.Replicas, x.Users, x.Requests, x.Non200String(), x.CreateTokenWithIAM, x.AssumeRole,
			x.Stats.SharedHits, x.Stats.StoreFailures, ms(x.Percentile(50)), ms(x.Percentile(99)), ms(x.Percentile(100)))
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "- herd: %d new users, %d concurrent first requests each, request r of user u to replica (u+r) mod replicas (target: exactly one CreateTokenWithIAM and one AssumeRole per user, 0 non-200).\n",
		c.fleetUsers, c.fleetPerUser)
	fmt.Fprintf(&b, "- cold start: %d users the store holds, every replica restarted (memory lost), then one request per user to a fresh replica from %d clients (target: 0 CreateTokenWithIAM, every session from the store, 0 non-200).\n",
		c.fleetUsers, c.concurrency)
	fmt.Fprintf(&b, "- rolling restart: %d users the fleet serves, %d clients, every replica restarted in turn over %v (a new middleware: memory lost, the store kept; the old one finishes its requests first) (target: 0 CreateTokenWithIAM, 0 non-200).\n",
		c.fleetUsers, c.concurrency, c.duration)
	for _, x := range r.Fleet {
		if x.FirstErr != "" {
			fmt.Fprintf(&b, "- fleet on %s, %s, %d replicas: first error: %s\n", x.Store, x.Name, x.Replicas, x.FirstErr)
		}
	}
	return b.String()
}

func storeTimeout(d time.Duration) string {
	if d == 0 {
		return "each store's default: 100ms for redisstore, 1s for dynamostore"
	}
	return d.String()
}
