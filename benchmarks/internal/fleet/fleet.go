// Package fleet runs several replicas of a tipkit server in one process,
// as separate processes would run them: each replica has its own
// middleware (its own memory) and its own Store client, and all share one
// tiptest environment and one store: Redis or a DynamoDB table (the
// Options' NewStore). It also drives them: the
// first requests of many users spread over every replica at once (Herd),
// and a rolling restart of every replica under load (RollingRestart).
//
// The benchmarks' fleet test asserts what these find (counts, never
// times); the load driver's fleet scenario reports them with latencies.
package fleet

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/tipkit/tipkit/benchmarks/internal/fixture"
	"github.com/tipkit/tipkit/ctxcreds"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/tiptest"
)

// Options configures a Fleet.
type Options struct {
	// Replicas is the number of replicas, at least 1.
	Replicas int
	// NewStore opens each replica's Store on the store every replica
	// shares: Redis or DynamoDB. Its timeout is the Store's (100 ms by
	// default): under the race detector on a small machine a herd needs
	// about 2 s, or replicas give up on the store and work alone.
	NewStore NewStore
	// Edit, when set, changes each replica's middleware options (after
	// the Store is set).
	Edit func(*middleware.Options)
}

// Fleet is a set of replicas. Each is reached through Handler(i), which
// stays the same across restarts.
type Fleet struct {
	env      *tiptest.Env
	o        Options
	key      []byte
	replicas []atomic.Pointer[replica]

	mu      sync.Mutex
	retired Stats // the counts of replicas restarted since
}

// replica is one process of the fleet.
type replica struct {
	m     *middleware.Middleware
	h     http.Handler
	store *Store

	// gate lets requests in (read-locked) until the replica is retired:
	// a restart waits for the requests under way, as a graceful shutdown
	// does, then closes the replica.
	gate    sync.RWMutex
	retired bool
}

// NewClient returns a go-redis client for a replica: it honours the
// contexts' deadlines (ContextTimeoutEnabled, so that the Store's Timeout
// bounds each call), and a Redis that is down fails each call at once,
// without command or dial retries (go-redis retries a refused dial for
// over a second by default).
func NewClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, MaxRetries: -1, DialerRetries: 1})
}

// New starts o.Replicas replicas over env and o.NewStore's store,
// sharing one random encryption key, as a fleet's replicas share theirs.
func New(env *tiptest.Env, o Options) (*Fleet, error) {
	if o.Replicas < 1 {
		return nil, errors.New("fleet: at least one replica")
	}
	if o.NewStore == nil {
		return nil, errors.New("fleet: no NewStore")
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails
	f := &Fleet{env: env, o: o, key: key, replicas: make([]atomic.Pointer[replica], o.Replicas)}
	for i := range f.replicas {
		r, err := f.start()
		if err != nil {
			_ = f.Close()
			return nil, err
		}
		f.replicas[i].Store(r)
	}
	return f, nil
}

// Len returns the number of replicas.
func (f *Fleet) Len() int { return len(f.replicas) }

// start builds a new replica: new memory, a new Store client.
func (f *Fleet) start() (*replica, error) {
	store, err := f.o.NewStore(f.key)
	if err != nil {
		return nil, err
	}
	m, err := fixture.New(f.env, func(o *middleware.Options) {
		o.Cache.Store = store.Store
		if f.o.Edit != nil {
			f.o.Edit(o)
		}
	})
	if err != nil {
		_ = store.Close()
		return nil, err
	}
	return &replica{m: m, h: m.Handler(OwnCredentials(f.env)), store: store}, nil
}

// Handler returns the handler of replica i: whichever process of the
// replica is current serves each request.
func (f *Fleet) Handler(i int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		for {
			r := f.replicas[i].Load()
			r.gate.RLock()
			if r.retired { // restarted since it was loaded: take the new one
				r.gate.RUnlock()
				continue
			}
			r.h.ServeHTTP(w, req)
			r.gate.RUnlock()
			return
		}
	})
}

// Restart replaces replica i by a new process: its memory is lost, the
// store keeps what it held. New requests reach the new process at once; the old
// one finishes the requests under way, then closes.
func (f *Fleet) Restart(i int) error {
	r, err := f.start()
	if err != nil {
		return err
	}
	old := f.replicas[i].Swap(r)
	return f.retire(old)
}

// retire waits for old's requests, then closes it and keeps its counts.
func (f *Fleet) retire(old *replica) error {
	old.gate.Lock()
	old.retired = true
	old.gate.Unlock()
	st := statsOf(old)
	f.mu.Lock()
	f.retired.add(st)
	f.mu.Unlock()
	return errors.Join(old.m.Close(), old.store.Close())
}

// Close closes every replica.
func (f *Fleet) Close() error {
	var errs []error
	for i := range f.replicas {
		if r := f.replicas[i].Swap(nil); r != nil {
			errs = append(errs, r.m.Close(), r.store.Close())
		}
	}
	return errors.Join(errs...)
}

// Stats is what the replicas of a fleet did, summed over every replica,
// restarted ones included.
type Stats struct {
	Requests      uint64 // requests the middlewares saw
	Exchanges     uint64 // tokens the middlewares exchanged
	Renewals      uint64
	SharedHits    uint64 // sessions a replica took from the store, obtained by another one
	Joined        uint64 // requests that joined an exchange under way in their replica
	StoreFailures uint64 // Store calls that failed (the flight then worked alone)
	StoreLoads    uint64 // sessions looked up in the store
	LeasesBusy    uint64 // lease requests that found another replica holding it
	ClaimsRefused uint64 // tokens another replica had claimed already
}

func (s *Stats) add(o Stats) {
	s.Requests += o.Requests
	s.Exchanges += o.Exchanges
	s.Renewals += o.Renewals
	s.SharedHits += o.SharedHits
	s.Joined += o.Joined
	s.StoreFailures += o.StoreFailures
	s.StoreLoads += o.StoreLoads
	s.LeasesBusy += o.LeasesBusy
	s.ClaimsRefused += o.ClaimsRefused
}

func statsOf(r *replica) Stats {
	m, s := r.m.Stats(), r.store.Stats()
	return Stats{
		Requests: m.Requests, Exchanges: m.Exchanges, Renewals: m.Renewals,
		SharedHits: m.SharedHits, Joined: m.Joined, StoreFailures: m.StoreFailures,
		StoreLoads: s.Loads, LeasesBusy: s.LeasesBusy, ClaimsRefused: s.ClaimsRefused,
	}
}

// Stats returns the counts of every replica, restarted ones included.
func (f *Fleet) Stats() Stats {
	f.mu.Lock()
	st := f.retired
	f.mu.Unlock()
	for i := range f.replicas {
		if r := f.replicas[i].Load(); r != nil {
			st.add(statsOf(r))
		}
	}
	return st
}

// OwnCredentials is the handler behind each replica: it answers 200 "ok"
// only when the request's AWS credentials belong to the user whose token
// it carried (env's AWS knows whose credentials it issued), and 500
// otherwise.
func OwnCredentials(env *tiptest.Env) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cfg, ok := ctxcreds.Config(r.Context())
		id, idOK := ctxcreds.IdentityFrom(r.Context())
		if !ok || !idOK {
			http.Error(w, "no AWS configuration or identity", http.StatusInternalServerError)
			return
		}
		creds, err := cfg.Credentials.Retrieve(r.Context())
		if err != nil {
			http.Error(w, "credentials: "+err.Error(), http.StatusInternalServerError)
			return
		}
		if owner, _ := env.AWS.UserFor(creds.AccessKeyID); owner != id.Subject() {
			http.Error(w, fmt.Sprintf("credentials of %q served to %q", owner, id.Subject()), http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
}
