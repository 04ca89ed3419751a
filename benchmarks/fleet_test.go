package benchmarks

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tipkit/tipkit/benchmarks/internal/fixture"
	"github.com/tipkit/tipkit/benchmarks/internal/fleet"
	"github.com/tipkit/tipkit/dynamostore/dynamotest"
	"github.com/tipkit/tipkit/redisstore/redistest"
	"github.com/tipkit/tipkit/tiptest"
)

// The fleet tests check the counts the README's fleet figures rest on,
// never a time: the replicas of a fleet sharing one Redis exchange each
// user's token once between them, whichever replicas a user's first
// requests reach and however many at once, and a rolling restart of every
// replica under load costs no exchange and no failed request.
//
// The Store's timeout is 10 s, not redisstore's default 100 ms: these
// tests run under -race in CI on two cores, often beside other work, and
// a herd there keeps Redis calls waiting for a CPU far beyond 100 ms (even
// 2 s was seen to fail on a loaded machine). A replica whose Redis calls
// time out works alone, which is the outage case, not the one measured
// here; the load driver's fleet scenario shows what the default does. For
// the same reason the herd is 60 users under -race, 200 otherwise.

const (
	fleetTestPerUser = 6
	fleetTestLatency = 5 * time.Millisecond // per AWS call: exchanges overlap, as they do against AWS
	fleetTestTimeout = 10 * time.Second
)

// fleetTestUsers is the size of the test herd.
func fleetTestUsers() int {
	if raceEnabled {
		return 60
	}
	return 200
}

// fleetStores are the stores a fleet shares sessions through: each starts
// a new engine for t (redis-server or dynalite, stopped when t ends, t
// skipped when it is not installed) and returns the replicas' NewStore.
var fleetStores = []struct {
	name  string
	start func(t *testing.T) fleet.NewStore
}{
	{"redis", func(t *testing.T) fleet.NewStore {
		return fleet.Redis(redistest.Start(t).Addr(), fleetTestTimeout)
	}},
	{"dynamodb", func(t *testing.T) fleet.NewStore {
		srv := dynamotest.Start(t)
		if err := fleet.CreateTable(context.Background(), srv.Client(), "sessions"); err != nil {
			t.Fatal(err)
		}
		return fleet.DynamoDB(srv.Client, "sessions", fleetTestTimeout)
	}},
}

// newTestFleet starts n replicas over a new tiptest environment and the
// store newStore opens; the fleet stops when t ends.
func newTestFleet(t *testing.T, n int, newStore fleet.NewStore) (*tiptest.Env, *fleet.Fleet) {
	t.Helper()
	env := tiptest.New(t)
	fixture.SetLatency(env, fleetTestLatency)
	f, err := fleet.New(env, fleet.Options{Replicas: n, NewStore: newStore})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return env, f
}

// TestFleetHerd: 200 new users (60 under -race), 6 concurrent first
// requests each spread over 1, 3 and 6 replicas: exactly one CreateTokenWithIAM and one
// AssumeRole per user for the whole fleet, and every request answered 200
// with its own user's credentials.
func TestFleetHerd(t *testing.T) {
	for _, st := range fleetStores {
		for _, n := range []int{1, 3, 6} {
			t.Run(fmt.Sprintf("%s/replicas=%d", st.name, n), func(t *testing.T) {
				testFleetHerd(t, n, st.start(t))
			})
		}
	}
}

func testFleetHerd(t *testing.T, n int, newStore fleet.NewStore) {
	env, f := newTestFleet(t, n, newStore)
	openFleet(t, env, f)
	users := fleetTestUsers()
	toks := fixture.Mint(env, users, "RS256", func(i int) string { return fixture.User("herd", i) })
	o := fleet.Herd(context.Background(), env, f, fleet.Direct(f), toks, fleetTestPerUser)
	if o.Requests != users*fleetTestPerUser || o.Non200 != 0 {
		t.Errorf("%d requests, %s not answered 200 (first: %v); want %d, 0", o.Requests, o.Non200String(), o.FirstErr, users*fleetTestPerUser)
	}
	if o.CreateTokenWithIAM != users || o.AssumeRole != users || o.AssumeRoleWithWebIdentity != 0 {
		t.Errorf("%d CreateTokenWithIAM, %d AssumeRole, %d AssumeRoleWithWebIdentity for %d users; want %d, %d, 0",
			o.CreateTokenWithIAM, o.AssumeRole, o.AssumeRoleWithWebIdentity, users, users, users)
	}
	if o.Stats.StoreFailures != 0 {
		t.Errorf("%d Store failures", o.Stats.StoreFailures)
	}
	if n > 1 && o.Stats.SharedHits == 0 {
		t.Error("no replica took a session from the store")
	}
	t.Logf("%d replicas: %+v in %v", n, o.Stats, o.Elapsed)
}

// openFleet sends each replica the first request of a user of its own, so
// that each fetches the IdP's keys and assumes the application role (once
// per process): the herd's AWS calls are then the users' alone.
func openFleet(t *testing.T, env *tiptest.Env, f *fleet.Fleet) {
	t.Helper()
	send := fleet.Direct(f)
	for i := range f.Len() {
		if _, err := send(context.Background(), i, env.IdP.Token(fmt.Sprintf("opener%d", i))); err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
}

// TestFleetRollingRestart: three replicas serving 60 users under load from
// 8 clients are restarted one after the other: no CreateTokenWithIAM, no
// AssumeRole, no answer other than 200.
func TestFleetRollingRestart(t *testing.T) {
	for _, st := range fleetStores {
		t.Run(st.name, func(t *testing.T) { testFleetRollingRestart(t, st.start(t)) })
	}
}

func testFleetRollingRestart(t *testing.T, newStore fleet.NewStore) {
	const users, clients = 60, 8
	env, f := newTestFleet(t, 3, newStore)
	toks := fixture.Mint(env, users, "RS256", func(i int) string { return fixture.User("restart", i) })
	send := fleet.Direct(f)
	for u, tok := range toks {
		if _, err := send(context.Background(), u%f.Len(), tok); err != nil {
			t.Fatalf("user %d: %v", u, err)
		}
	}
	o, err := fleet.RollingRestart(context.Background(), env, f, send, toks, clients, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if o.Non200 != 0 || o.Requests == 0 {
		t.Errorf("%d requests, %s not answered 200 (first: %v)", o.Requests, o.Non200String(), o.FirstErr)
	}
	if o.CreateTokenWithIAM != 0 || o.AssumeRole != 0 {
		t.Errorf("%d CreateTokenWithIAM and %d AssumeRole during the restarts, want none", o.CreateTokenWithIAM, o.AssumeRole)
	}
	if o.Stats.SharedHits == 0 {
		t.Error("no restarted replica took a session from the store")
	}
	t.Logf("%d requests during the rolling restart of %d replicas: %+v", o.Requests, f.Len(), o.Stats)
}

// TestFleetColdStart: replicas serving 60 users are all restarted, then
// each user's next request reaches a fresh replica: every one served from
// the store, no CreateTokenWithIAM, no AssumeRole.
func TestFleetColdStart(t *testing.T) {
	for _, st := range fleetStores {
		t.Run(st.name, func(t *testing.T) {
			const users, clients = 60, 8
			env, f := newTestFleet(t, 3, st.start(t))
			toks := fixture.Mint(env, users, "RS256", func(i int) string { return fixture.User("cold", i) })
			send := fleet.Direct(f)
			for u, tok := range toks {
				if _, err := send(context.Background(), u%f.Len(), tok); err != nil {
					t.Fatalf("user %d: %v", u, err)
				}
			}
			o, err := fleet.ColdStart(context.Background(), env, f, send, toks, clients)
			if err != nil {
				t.Fatal(err)
			}
			if o.Non200 != 0 || o.Requests != users {
				t.Errorf("%d requests, %s not answered 200 (first: %v); want %d", o.Requests, o.Non200String(), o.FirstErr, users)
			}
			if o.CreateTokenWithIAM != 0 || o.AssumeRole != 0 || int(o.Stats.SharedHits) != users {
				t.Errorf("%d CreateTokenWithIAM, %d AssumeRole, %d sessions from the store; want 0, 0, %d", o.CreateTokenWithIAM, o.AssumeRole, o.Stats.SharedHits, users)
			}
		})
	}
}
