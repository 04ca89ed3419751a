package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/tipkit/tipkit/dynamostore"
	"github.com/tipkit/tipkit/dynamostore/dynamotest"
	"github.com/tipkit/tipkit/examples/internal/demo"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/tiptest"
)

// selfTestStoreTimeout bounds each call of a self-test instance's store:
// dynalite, tiptest, the instances and perhaps the race detector share
// this machine's CPUs, and a call that times out would make its instance
// work alone, as when the table cannot be reached.
const selfTestStoreTimeout = 2 * time.Second

// The self-test's users, and how many events each sends every warm
// instance.
var selfTestUsers = []string{"alice", "bob"}

const eventsPerInstance = 3

// selfTest runs the function locally: tiptest for AWS and the identity
// provider, dynalite (or the DynamoDB at endpoint) for the table, three
// instances invoked with API Gateway v2 events, then a fourth started
// cold. It prints what happened to w and returns an error listing every
// check that failed.
func selfTest(ctx context.Context, w io.Writer, endpoint string) error {
	env, err := tiptest.NewEnv()
	if err != nil {
		return err
	}
	defer env.Close()
	ddb, about, stop, err := dynamo(ctx, w, endpoint)
	if err != nil {
		return err
	}
	defer stop()
	table := "tipkit-lambda-" + randomHex(4)
	if err := dynamostore.CreateTable(ctx, ddb, table); err != nil {
		return err
	}
	if endpoint != "" {
		defer func() {
			_, _ = ddb.DeleteTable(context.WithoutCancel(ctx), &dynamodb.DeleteTableInput{TableName: &table})
		}()
	}

	// What every instance shares: the function's settings, the table and
	// the key (in AWS, the same environment). The instances need no AWS
	// keys: the application role, assumed with the users' tokens, signs
	// the exchange.
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	s, err := settingsFromEnv(mapEnv(map[string]string{
		demo.EnvIssuer:             env.IdP.Issuer(),
		demo.EnvAudience:           env.IdP.Audience(),
		demo.EnvApplicationArn:     env.ApplicationArn,
		demo.EnvAccessRoleArn:      env.AccessRoleArn,
		demo.EnvApplicationRoleArn: env.ApplicationRoleArn,
		demo.EnvRegion:             "us-east-1",
		EnvTable:                   table,
		EnvEncryptionKey:           base64.StdEncoding.EncodeToString(key),
	}))
	if err != nil {
		return err
	}
	s.StoreTimeout = selfTestStoreTimeout
	cfg := env.Config()
	cfg.Credentials = nil

	var instances []*instance
	defer func() {
		for _, in := range instances {
			_ = in.mw.Close()
		}
	}()
	start := func() (*instance, error) {
		in, err := newInstance(ctx, fmt.Sprintf("i%d", len(instances)+1), s, cfg, ddb)
		if err == nil {
			instances = append(instances, in)
		}
		return in, err
	}
	for range 3 {
		if _, err := start(); err != nil {
			return err
		}
	}
	tokens := map[string]string{}
	for _, u := range selfTestUsers {
		tokens[u] = env.IdP.Token(u)
	}

	fmt.Fprintf(w, "lambda: the middleware behind httpadapter.NewV2, instances sharing sessions in DynamoDB\n\n")
	fmt.Fprintf(w, "  identity provider  %s\n", env.IdP.Issuer())
	fmt.Fprintf(w, "  local AWS          %s\n", env.AWS.URL())
	fmt.Fprintf(w, "  DynamoDB           %s, table %s\n\n", about, table)

	var failed []string
	fail := func(format string, args ...any) { failed = append(failed, fmt.Sprintf(format, args...)) }
	check := func(in *instance, user string) time.Duration {
		took, err := in.whoAmI(ctx, env, user, tokens[user])
		if err != nil {
			fail("%v", err)
		}
		return took
	}

	// Each user's first event, on an instance of its own: the instance
	// fetches the identity provider's keys and exchanges the token.
	exchanged := map[string]time.Duration{}
	for i, u := range selfTestUsers {
		in := instances[i%len(instances)]
		exchanged[u] = check(in, u)
		fmt.Fprintf(w, "%s's first event on %s: %.1f ms (key set fetch + full exchange)\n", u, in.name, ms(exchanged[u]))
	}

	// Then events of both users on every instance: the instances run at
	// once, each one event at a time, as Lambda invokes an instance.
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, in := range instances[:3] {
		wg.Go(func() {
			for j := range eventsPerInstance * len(selfTestUsers) {
				u := selfTestUsers[j%len(selfTestUsers)]
				if _, err := in.whoAmI(ctx, env, u, tokens[u]); err != nil {
					mu.Lock()
					fail("%v", err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	fmt.Fprintf(w, "%d more events, %d per user on each of i1 i2 i3 at once\n", 3*eventsPerInstance*len(selfTestUsers), eventsPerInstance)
	if status := instances[0].status(ctx, ""); status != http.StatusUnauthorized {
		fail("an event without a token answered %d, want 401", status)
	} else {
		fmt.Fprintf(w, "an event without a token: 401\n")
	}

	exchanges := func() (created, assumed, app int) {
		return env.AWS.Calls("CreateTokenWithIAM"), env.AWS.Calls("AssumeRole"), env.AWS.Calls("AssumeRoleWithWebIdentity")
	}
	created, assumed, app := exchanges()
	fmt.Fprintf(w, "AWS saw %d CreateTokenWithIAM, %d AssumeRole and %d AssumeRoleWithWebIdentity calls for %d users\n",
		created, assumed, app, len(selfTestUsers))
	if created != len(selfTestUsers) || assumed != len(selfTestUsers) {
		fail("%d CreateTokenWithIAM and %d AssumeRole calls for %d users, want one of each per user", created, assumed, len(selfTestUsers))
	}

	// A cold start: a fourth instance, built fresh, serves both users from
	// the table.
	begun := time.Now()
	cold, err := start()
	if err != nil {
		return err
	}
	initTook := time.Since(begun)
	fmt.Fprintf(w, "\ncold start of %s: init %.1f ms (no network call)\n", cold.name, ms(initTook))
	coldFirst := map[string]time.Duration{}
	for i, u := range selfTestUsers {
		coldFirst[u] = check(cold, u)
		what := "session read from the table"
		if i == 0 {
			what = "key set fetch + " + what
		}
		fmt.Fprintf(w, "%s's first event on %s: %.1f ms (%s)\n", u, cold.name, ms(coldFirst[u]), what)
	}
	warm := check(cold, selfTestUsers[0])
	fmt.Fprintf(w, "%s's second event on %s: %.1f ms (session in memory)\n", selfTestUsers[0], cold.name, ms(warm))
	c2, a2, app2 := exchanges()
	if c2 != created || a2 != assumed || app2 != app {
		fail("the cold instance made %d CreateTokenWithIAM, %d AssumeRole and %d AssumeRoleWithWebIdentity calls, want none",
			c2-created, a2-assumed, app2-app)
	} else {
		fmt.Fprintf(w, "%s made no CreateTokenWithIAM, AssumeRole or AssumeRoleWithWebIdentity call\n", cold.name)
	}
	first := selfTestUsers[0]
	fmt.Fprintf(w, "\ncold-start cost: %s's first event on the cold instance %.1f ms vs %.1f ms with a full exchange (both with the key set fetch); %s's %.1f ms vs %.1f ms\n",
		first, ms(coldFirst[first]), ms(exchanged[first]),
		selfTestUsers[1], ms(coldFirst[selfTestUsers[1]]), ms(exchanged[selfTestUsers[1]]))

	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	events := len(selfTestUsers) + 3*eventsPerInstance*len(selfTestUsers) + 1 + len(selfTestUsers) + 1
	fmt.Fprintf(w, "\nOK: %d events on 4 instances answered as expected, each with the caller's own credentials; each user exchanged once; the cold instance served both from the table with no exchange\n", events)
	return nil
}

// instance is one instance of the function, in all but name: its own
// middleware and store, behind its own adapter.
type instance struct {
	name  string
	mw    *middleware.Middleware
	proxy *httpadapter.HandlerAdapterV2
}

// newInstance builds an instance as the function's initialisation does.
func newInstance(ctx context.Context, name string, s settings, cfg aws.Config, ddb *dynamodb.Client) (*instance, error) {
	mw, err := newMiddleware(ctx, s, cfg, ddb)
	if err != nil {
		return nil, err
	}
	return &instance{name: name, mw: mw, proxy: httpadapter.NewV2(newHandler(mw))}, nil
}

// event is the event of API Gateway (an HTTP API, payload version 2.0) for
// GET /whoami with token as its bearer token, or none when empty.
func event(token string) events.APIGatewayV2HTTPRequest {
	ev := events.APIGatewayV2HTTPRequest{
		Version:  "2.0",
		RouteKey: "GET /whoami",
		RawPath:  "/whoami",
		Headers:  map[string]string{"accept": "application/json", "host": "example.execute-api.us-east-1.amazonaws.com"},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			DomainName: "example.execute-api.us-east-1.amazonaws.com",
			RequestID:  randomHex(8),
			Stage:      "$default",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: http.MethodGet, Path: "/whoami", Protocol: "HTTP/1.1", SourceIP: "192.0.2.10",
			},
		},
	}
	if token != "" {
		ev.Headers["authorization"] = "Bearer " + token
	}
	return ev
}

// invoke invokes in with an event carrying token, as the Lambda runtime
// does, and returns the status and body of its answer.
func (in *instance) invoke(ctx context.Context, token string) (int, []byte, error) {
	resp, err := in.proxy.ProxyWithContext(ctx, event(token))
	if err != nil {
		return 0, nil, err
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if body, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			return 0, nil, err
		}
	}
	return resp.StatusCode, body, nil
}

// status returns the status of in's answer to an event carrying token, or
// 0 when the invocation failed.
func (in *instance) status(ctx context.Context, token string) int {
	code, _, _ := in.invoke(ctx, token)
	return code
}

// whoAmI invokes in for user and checks the answer: 200, with credentials
// tiptest issued for user. It returns how long the invocation took.
func (in *instance) whoAmI(ctx context.Context, env *tiptest.Env, user, token string) (time.Duration, error) {
	begun := time.Now()
	code, body, err := in.invoke(ctx, token)
	took := time.Since(begun)
	if err != nil {
		return took, fmt.Errorf("%s on %s: %v", user, in.name, err)
	}
	if code != http.StatusOK {
		return took, fmt.Errorf("%s on %s: status %d: %s", user, in.name, code, strings.TrimSpace(string(body)))
	}
	var id identity
	if err := json.Unmarshal(body, &id); err != nil {
		return took, fmt.Errorf("%s on %s: %v", user, in.name, err)
	}
	if owner, _ := env.AWS.UserFor(id.AccessKeyID); owner != user {
		return took, fmt.Errorf("%s on %s: served with credentials of %q", user, in.name, owner)
	}
	if !strings.Contains(id.Arn, ":assumed-role/") {
		return took, fmt.Errorf("%s on %s: STS reported %q, not a role session", user, in.name, id.Arn)
	}
	return took, nil
}

// dynamo returns a client of the DynamoDB at endpoint or, when endpoint
// is empty, of a dynalite started for the self-test (installed first with
// npm when it is missing and npm is on PATH), what it is, and a function
// that stops what was started.
func dynamo(ctx context.Context, w io.Writer, endpoint string) (*dynamodb.Client, string, func(), error) {
	if endpoint != "" {
		client := dynamodb.New(dynamodb.Options{
			Region:       "us-east-1",
			BaseEndpoint: aws.String(endpoint),
			Credentials:  credentials.NewStaticCredentialsProvider("AKIDLAMBDASELFTEST", "selftest-secret", ""),
		})
		return client, "the endpoint " + endpoint, func() {}, nil
	}
	srv, err := dynamotest.Run(ctx)
	if errors.Is(err, dynamotest.ErrNotInstalled) {
		if err := installDynalite(ctx, w); err != nil {
			return nil, "", nil, err
		}
		srv, err = dynamotest.Run(ctx)
	}
	if err != nil {
		return nil, "", nil, err
	}
	return srv.Client(), "dynalite " + dynamotest.Version + " on " + srv.Endpoint(), srv.Close, nil
}

// installDynalite installs dynalite where dynamotest looks for it, with
// npm.
func installDynalite(ctx context.Context, w io.Writer) error {
	npm, err := exec.LookPath("npm")
	dir := dynamotest.Dir()
	if err != nil || dir == "" {
		return fmt.Errorf("%w (and npm is not on PATH to install it); or point -dynamodb at a DynamoDB endpoint", dynamotest.ErrNotInstalled)
	}
	fmt.Fprintf(w, "installing dynalite %s in %s with npm\n", dynamotest.Version, dir)
	cmd := exec.CommandContext(ctx, npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix", dir, "dynalite@"+dynamotest.Version)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("installing dynalite with npm: %w", err)
	}
	return nil
}

// mapEnv reads an environment from m.
func mapEnv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ms returns d in milliseconds.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
