package fleet

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tipkit/tipkit/tiptest"
)

// Send sends one request with token to the fleet's replica i and returns
// its latency, and an error for any answer other than 200.
type Send func(ctx context.Context, i int, token string) (time.Duration, error)

// Direct returns a Send that calls the replicas' handlers in process,
// through an httptest recorder: no sockets, as the tests need.
func Direct(f *Fleet) Send {
	handlers := make([]http.Handler, f.Len())
	for i := range handlers {
		handlers[i] = f.Handler(i)
	}
	return func(ctx context.Context, i int, token string) (time.Duration, error) {
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		start := time.Now()
		handlers[i].ServeHTTP(w, req)
		took := time.Since(start)
		if w.Code != http.StatusOK {
			return took, &StatusError{Code: w.Code, Body: w.Body.String()}
		}
		return took, nil
	}
}

// StatusError is an answer other than 200.
type StatusError struct {
	Code int
	Body string
}

func (e *StatusError) Error() string { return http.StatusText(e.Code) + ": " + e.Body }

// Outcome is what a drive of the fleet saw.
type Outcome struct {
	Requests int
	Non200   int
	// Codes counts the answers other than 200 by status; a request that
	// got no answer counts under 0.
	Codes    map[int]int
	FirstErr error
	Lat      []time.Duration // sorted
	Elapsed  time.Duration
	// AWS calls during the drive.
	CreateTokenWithIAM, AssumeRole, AssumeRoleWithWebIdentity int
	// Stats is what the replicas did during the drive.
	Stats Stats
}

// Non200String returns the count of answers other than 200, with their
// statuses: "0", or "12 (10x401, 2x503)".
func (o *Outcome) Non200String() string {
	if o.Non200 == 0 {
		return "0"
	}
	codes := slices.Sorted(maps.Keys(o.Codes))
	parts := make([]string, len(codes))
	for i, c := range codes {
		name := strconv.Itoa(c)
		if c == 0 {
			name = "no answer"
		}
		parts[i] = fmt.Sprintf("%dx%s", o.Codes[c], name)
	}
	return fmt.Sprintf("%d (%s)", o.Non200, strings.Join(parts, ", "))
}

// Percentile returns the p-th percentile (0 < p <= 100) of the latencies.
func (o *Outcome) Percentile(p float64) time.Duration {
	if len(o.Lat) == 0 {
		return 0
	}
	i := int(float64(len(o.Lat))*p/100+0.5) - 1
	return o.Lat[min(max(i, 0), len(o.Lat)-1)]
}

// counter reads env's AWS calls and f's stats before a drive, and fills
// an Outcome's counts after it.
type counter struct {
	env     *tiptest.Env
	f       *Fleet
	c, a, w int
	stats   Stats
	start   time.Time
	mu      sync.Mutex
	out     Outcome
}

func newCounter(env *tiptest.Env, f *Fleet) *counter {
	return &counter{
		env: env, f: f,
		c: env.AWS.Calls("CreateTokenWithIAM"), a: env.AWS.Calls("AssumeRole"), w: env.AWS.Calls("AssumeRoleWithWebIdentity"),
		stats: f.Stats(), start: time.Now(),
	}
}

// record adds the latencies and the errors of some requests.
func (c *counter) record(lat []time.Duration, errs []error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.out.Lat = append(c.out.Lat, lat...)
	for _, err := range errs {
		c.out.Non200++
		if c.out.FirstErr == nil {
			c.out.FirstErr = err
		}
		if c.out.Codes == nil {
			c.out.Codes = map[int]int{}
		}
		var se *StatusError
		if errors.As(err, &se) {
			c.out.Codes[se.Code]++
		} else {
			c.out.Codes[0]++
		}
	}
}

func (c *counter) done() Outcome {
	o := c.out
	o.Elapsed = time.Since(c.start)
	o.Requests = len(o.Lat)
	slices.Sort(o.Lat)
	o.CreateTokenWithIAM = c.env.AWS.Calls("CreateTokenWithIAM") - c.c
	o.AssumeRole = c.env.AWS.Calls("AssumeRole") - c.a
	o.AssumeRoleWithWebIdentity = c.env.AWS.Calls("AssumeRoleWithWebIdentity") - c.w
	after := c.f.Stats()
	o.Stats = Stats{
		Requests:      after.Requests - c.stats.Requests,
		Exchanges:     after.Exchanges - c.stats.Exchanges,
		Renewals:      after.Renewals - c.stats.Renewals,
		SharedHits:    after.SharedHits - c.stats.SharedHits,
		Joined:        after.Joined - c.stats.Joined,
		StoreFailures: after.StoreFailures - c.stats.StoreFailures,
		StoreLoads:    after.StoreLoads - c.stats.StoreLoads,
		LeasesBusy:    after.LeasesBusy - c.stats.LeasesBusy,
		ClaimsRefused: after.ClaimsRefused - c.stats.ClaimsRefused,
	}
	return o
}

// Herd sends the first requests of new users all at once: perUser
// concurrent requests for each token, request r of user u to replica
// (u+r) mod f.Len(), so that with perUser ≥ f.Len() every replica sees
// every user at the same moment. Each token is of another user, none
// seen before.
func Herd(ctx context.Context, env *tiptest.Env, f *Fleet, send Send, tokens []string, perUser int) Outcome {
	c := newCounter(env, f)
	var (
		wg    sync.WaitGroup
		ready sync.WaitGroup
		gate  = make(chan struct{})
	)
	ready.Add(len(tokens) * perUser)
	for u, tok := range tokens {
		for r := range perUser {
			wg.Go(func() {
				ready.Done()
				<-gate
				took, err := send(ctx, (u+r)%f.Len(), tok)
				var errs []error
				if err != nil {
					errs = []error{err}
				}
				c.record([]time.Duration{took}, errs)
			})
		}
	}
	ready.Wait()
	c.start = time.Now()
	close(gate)
	wg.Wait()
	return c.done()
}

// RollingRestart keeps clients concurrent clients sending requests of the
// users whose tokens are given (users the fleet already serves), each
// request to the next replica, while every replica is restarted in turn,
// gap apart (and gap before the first and after the last). A restarted
// replica has lost its memory: it finds its users' sessions in the store.
func RollingRestart(ctx context.Context, env *tiptest.Env, f *Fleet, send Send, tokens []string, clients int, gap time.Duration) (Outcome, error) {
	c := newCounter(env, f)
	stop := make(chan struct{})
	var next atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 1024)
			var errs []error
			for {
				select {
				case <-stop:
					c.record(lat, errs)
					return
				default:
				}
				n := int(next.Add(1)) - 1
				took, err := send(ctx, n%f.Len(), tokens[(n/f.Len())%len(tokens)])
				lat = append(lat, took)
				if err != nil {
					errs = append(errs, err)
				}
			}
		})
	}
	var restartErr error
	for i := range f.Len() {
		time.Sleep(gap)
		if err := f.Restart(i); err != nil {
			restartErr = err
			break
		}
	}
	time.Sleep(gap)
	close(stop)
	wg.Wait()
	return c.done(), restartErr
}

// ColdStart restarts every replica (not timed: new processes, memory
// lost), then has clients concurrent clients send one request for each
// token, of users whose sessions the store holds, user u to replica
// (u+1) mod f.Len(): each is a fresh replica's first request of the user,
// to be served from the store without an exchange.
func ColdStart(ctx context.Context, env *tiptest.Env, f *Fleet, send Send, tokens []string, clients int) (Outcome, error) {
	for i := range f.Len() {
		if err := f.Restart(i); err != nil {
			return Outcome{}, err
		}
	}
	c := newCounter(env, f)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			var lat []time.Duration
			var errs []error
			for u := int(next.Add(1)) - 1; u < len(tokens); u = int(next.Add(1)) - 1 {
				took, err := send(ctx, (u+1)%f.Len(), tokens[u])
				lat = append(lat, took)
				if err != nil {
					errs = append(errs, err)
				}
			}
			c.record(lat, errs)
		})
	}
	wg.Wait()
	return c.done(), nil
}
