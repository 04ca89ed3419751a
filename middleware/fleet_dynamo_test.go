package middleware_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

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
	f := newDynamoFleet(t)
	replicas := []http.Handler{f.replica(), f.replica(), f.replica()}
	env, get := f.env, f.get
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

	fourth := f.replica()
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

// dynamoFleet is a table on dynalite shared by replicas, each a middleware
// with a dynamostore of its own, as separate processes would have.
type dynamoFleet struct {
	t     *testing.T
	srv   *dynamotest.Server
	table string
	key   []byte
	env   *tiptest.Env
}

func newDynamoFleet(t *testing.T) *dynamoFleet {
	srv := dynamotest.Start(t)
	const table = "tipkit-fleet"
	if err := dynamostore.CreateTable(context.Background(), srv.Client(), table); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &dynamoFleet{t: t, srv: srv, table: table, key: key, env: tiptest.New(t)}
}

// replica returns a new replica: a middleware with a store of its own.
func (f *dynamoFleet) replica() http.Handler {
	// The race detector slows every goroutine several times over: a
	// herd would outlast shorter timeouts, and each replica would work
	// alone, as it does when the table is unreachable.
	store, err := dynamostore.New(f.srv.Client(), dynamostore.Options{Table: f.table, EncryptionKeys: [][]byte{f.key}, Timeout: 2 * time.Second})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := store.Check(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	m := newMiddleware(f.t, f.env, func(o *middleware.Options) { o.Cache.Store = store })
	return m.Handler(whoAmI(f.env))
}

// get sends h a request with token and reads its answer, with the owner
// of the credentials the handler was given.
func (f *dynamoFleet) get(h http.Handler, token string) answer {
	return readAnswer(f.env, serve(h, request(token)))
}

// Items whose attributes were moved to other users' items (each sealed
// value bound to its own item's key) never give a user another user's
// credentials: a fresh replica answers each user as that user or 401
// "obtain a fresh token", and a fresh token then works.
func TestFleetDynamoSwappedItems(t *testing.T) {
	f := newDynamoFleet(t)
	first := f.replica()
	users := []string{"alice", "bob", "carol"}
	tokens := map[string]string{}
	for _, u := range users {
		tokens[u] = f.env.IdP.Token(u)
		f.get(first, tokens[u]).check(t, u, false)
	}
	// Every item's non-key attributes move to the next item: sessions,
	// token marks and leases alike.
	client := f.srv.Client()
	out, err := client.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(f.table), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	items := out.Items
	if len(items) < 2*len(users) {
		t.Fatalf("%d items for %d users, want a session and a token mark each", len(items), len(users))
	}
	moved := make([]map[string]types.AttributeValue, len(items))
	for i, it := range items {
		next := items[(i+1)%len(items)]
		m := map[string]types.AttributeValue{"pk": it["pk"]}
		for k, v := range next {
			if k != "pk" {
				m[k] = v
			}
		}
		moved[i] = m
	}
	for _, it := range moved {
		if _, err := client.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(f.table), Item: it}); err != nil {
			t.Fatal(err)
		}
	}
	fresh := f.replica()
	for _, u := range users {
		for range 2 {
			f.get(fresh, tokens[u]).check(t, u, true)
		}
	}
	for _, u := range users {
		f.get(fresh, f.env.IdP.Token(u)).check(t, u, false)
	}
}
