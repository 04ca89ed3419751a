package middleware_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tipkit/tipkit/dynamostore"
	"github.com/tipkit/tipkit/dynamostore/dynamotest"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/tiptest"
)

// Three replicas, each with a dynamostore of its own on one table, as
// separate processes would have: 40 users with 5 concurrent requests each
// spread over them cost the fleet one exchange per user, and a fourth
// replica started afterwards serves every user from the table alone.
func TestFleetOnDynamoDB(t *testing.T) {
	srv := dynamotest.Start(t)
	const table = "tipkit-fleet"
	if err := dynamostore.CreateTable(context.Background(), srv.Client(), table); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	env := tiptest.New(t)
	replica := func() http.Handler {
		// The race detector slows every goroutine several times over: a
		// herd would blow the default 100 ms per call, and each replica
		// would work alone, as it does when the table is unreachable.
		store, err := dynamostore.New(srv.Client(), dynamostore.Options{Table: table, EncryptionKeys: [][]byte{key}, Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Check(context.Background()); err != nil {
			t.Fatal(err)
		}
		m := newMiddleware(t, env, func(o *middleware.Options) { o.Cache.Store = store })
		return m.Handler(whoAmI(env))
	}
	replicas := []http.Handler{replica(), replica(), replica()}
	get := func(h http.Handler, token string) answer {
		w := serve(h, request(token))
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

	const users, perUser = 40, 5
	tokens := make([]string, users)
	var wg sync.WaitGroup
	for u := range users {
		user := fmt.Sprintf("user%02d", u)
		tokens[u] = env.IdP.Token(user)
		for r := range perUser {
			wg.Go(func() { get(replicas[(u+r)%len(replicas)], tokens[u]).check(t, user, false) })
		}
	}
	wg.Wait()
	if c, a := env.AWS.Calls("CreateTokenWithIAM"), env.AWS.Calls("AssumeRole"); c != users || a != users {
		t.Fatalf("%d CreateTokenWithIAM and %d AssumeRole calls for %d users, want %d each", c, a, users, users)
	}

	fourth := replica()
	// Every AWS call but the handler's own: whoAmI calls GetCallerIdentity
	// with the credentials it was given.
	total := func() (n int) {
		for op, c := range env.AWS.CallCounts() {
			if op != "GetCallerIdentity" {
				n += c
			}
		}
		return n
	}
	before := total()
	for u := range users {
		get(fourth, tokens[u]).check(t, fmt.Sprintf("user%02d", u), false)
	}
	if after := total(); after != before {
		t.Fatalf("the fourth replica made %d AWS calls, want none: %v", after-before, env.AWS.CallCounts())
	}
}
