package accessgrants_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3control"
	"github.com/aws/aws-sdk-go-v2/service/s3control/types"
	"github.com/aws/smithy-go"

	"github.com/tipkit/tipkit/accessgrants"
	"github.com/tipkit/tipkit/ctxcreds"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/middleware/middlewaretest"
	"github.com/tipkit/tipkit/tiptest"
)

// fixture is a local AWS, the middleware in front of it, and a Cache.
type fixture struct {
	env    *tiptest.Env
	mw     *middleware.Middleware
	grants *accessgrants.Cache
}

// newFixture starts tiptest, the middleware on its clock, and a Cache on
// the same clock with the options edit makes.
func newFixture(t *testing.T, edit ...func(*accessgrants.Options)) *fixture {
	t.Helper()
	env := tiptest.New(t)
	o := accessgrants.Options{AccountID: env.AWS.AccountID(), Now: env.Clock.Now}
	for _, f := range edit {
		f(&o)
	}
	c, err := accessgrants.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{env: env, mw: middlewaretest.New(t, env), grants: c}
}

// as returns the context of a request of user through the middleware: it
// holds the user's identity and identity-enhanced configuration.
func (f *fixture) as(t *testing.T, user string) context.Context {
	t.Helper()
	var ctx context.Context
	h := f.mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ctx = r.Context() }))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+f.env.IdP.Token(user, tiptest.WithLifetime(3*time.Hour)))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK || ctx == nil {
		t.Fatalf("the middleware answered %s's request %d: %s", user, w.Code, w.Body.String())
	}
	return ctx
}

// key returns the access key of cfg's credentials and whose they are.
func (f *fixture) key(t testing.TB, cfg aws.Config) (string, string) {
	t.Helper()
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatalf("Retrieve: %v", err)
	}
	owner, _ := f.env.AWS.UserFor(creds.AccessKeyID)
	return creds.AccessKeyID, owner
}

// calls fails t unless tiptest served want GetDataAccess calls.
func (f *fixture) calls(t *testing.T, want int) {
	t.Helper()
	if n := f.env.AWS.Calls("GetDataAccess"); n != want {
		t.Fatalf("Calls(GetDataAccess) = %d, want %d", n, want)
	}
}

// read reads key with cfg, path-style as tiptest's S3 needs.
func read(ctx context.Context, cfg aws.Config, bucket, key string) error {
	out, err := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }).GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key),
	})
	if err == nil {
		out.Body.Close()
	}
	return err
}

func TestUsersNeverShareCredentials(t *testing.T) {
	f := newFixture(t)
	env := f.env
	if err := env.AWS.PutObject(env.Bucket, "shared/report.csv", []byte("q1")); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		env.AWS.Grant(env.Bucket, "shared/", env.AWS.UserID(u), tiptest.AccessRead)
	}
	alice, bob := f.as(t, "alice"), f.as(t, "bob")
	req := accessgrants.Prefix(env.Bucket, "shared/", types.PermissionRead)

	aliceCfg, err := f.grants.GetDataAccess(alice, req)
	if err != nil {
		t.Fatal(err)
	}
	aliceKey, owner := f.key(t, aliceCfg)
	if owner != "alice" {
		t.Fatalf("alice got credentials of %q", owner)
	}
	// The same request of another user is another call, other credentials.
	bobCfg, err := f.grants.GetDataAccess(bob, req)
	if err != nil {
		t.Fatal(err)
	}
	if bobKey, owner := f.key(t, bobCfg); owner != "bob" || bobKey == aliceKey {
		t.Fatalf("bob got %s of %q (alice's: %s)", bobKey, owner, aliceKey)
	}
	f.calls(t, 2)
	// Each is then served from memory with their own.
	for ctx, want := range map[context.Context]string{alice: "alice", bob: "bob"} {
		cfg, err := f.grants.GetDataAccess(ctx, accessgrants.Object(env.Bucket, "shared/report.csv", types.PermissionRead))
		if err != nil {
			t.Fatal(err)
		}
		if _, owner := f.key(t, cfg); owner != want {
			t.Fatalf("%s's request served credentials of %q", want, owner)
		}
		if err := read(ctx, cfg, env.Bucket, "shared/report.csv"); err != nil {
			t.Fatal(err)
		}
	}
	f.calls(t, 2)

	// Many users at once, each many times: one call per user, and every
	// request gets its own user's credentials.
	const users, perUser = 8, 16
	ctxs := make([]context.Context, users)
	for i := range ctxs {
		name := fmt.Sprintf("user%d", i)
		env.AWS.Grant(env.Bucket, "shared/", name, tiptest.AccessRead)
		ctxs[i] = f.as(t, name)
	}
	env.AWS.SetFault("GetDataAccess", tiptest.Fault{Latency: 100 * time.Millisecond})
	var wg sync.WaitGroup
	var wrong atomic.Int32
	for i := range users * perUser {
		u := i % users
		wg.Go(func() {
			cfg, err := f.grants.GetDataAccess(ctxs[u], req)
			if err != nil {
				t.Error(err)
				return
			}
			if _, owner := f.key(t, cfg); owner != fmt.Sprintf("user%d", u) {
				wrong.Add(1)
			}
		})
	}
	wg.Wait()
	if wrong.Load() != 0 {
		t.Fatalf("%d requests served another user's credentials", wrong.Load())
	}
	f.calls(t, 2+users)
}

func TestHerdOfOneUserMakesOneCall(t *testing.T) {
	client := countingClient{dataStarted: make(chan struct{}, 1)}
	f := newFixture(t, func(o *accessgrants.Options) { o.DataAccessClient = &client })
	env := f.env
	client.next = s3control.NewFromConfig(env.Config())
	env.AWS.Grant(env.Bucket, "alice/", env.AWS.UserID("alice"), tiptest.AccessReadWrite)
	ctx := f.as(t, "alice")
	env.AWS.SetFault("GetDataAccess", tiptest.Fault{Latency: 200 * time.Millisecond})

	const herd = 50
	keys := make([]string, herd)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			cfg, err := f.grants.GetDataAccess(ctx, accessgrants.Prefix(env.Bucket, "alice/", types.PermissionRead))
			if err != nil {
				t.Error(err)
				return
			}
			keys[i], _ = f.key(t, cfg)
		})
	}
	wg.Wait()
	f.calls(t, 1)
	for _, k := range keys {
		if k != keys[0] {
			t.Fatalf("the herd got several sets of credentials: %s and %s", keys[0], k)
		}
	}

	// A caller that gives up does not fail the others' shared call.
	impatient, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	w := accessgrants.Prefix(env.Bucket, "alice/", types.PermissionWrite)
	<-client.dataStarted // the herd's call
	go func() { _, err := f.grants.GetDataAccess(impatient, w); errc <- err }()
	<-client.dataStarted // the impatient caller's call is under way: the patient one joins it
	if _, err := f.grants.GetDataAccess(ctx, w); err != nil {
		t.Fatalf("the patient caller: %v", err)
	}
	if err := <-errc; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the impatient caller got %v, want its deadline", err)
	}
	f.calls(t, 2)
}

func TestHeldWithinTheMatchedGrant(t *testing.T) {
	f := newFixture(t)
	env := f.env
	for _, k := range []string{"alice/a.txt", "alice/b.txt", "alice/deep/c.txt"} {
		if err := env.AWS.PutObject(env.Bucket, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	env.AWS.Grant(env.Bucket, "alice/", "alice", tiptest.AccessReadWrite)
	ctx := f.as(t, "alice")
	get := func(r accessgrants.Request) aws.Config {
		t.Helper()
		cfg, err := f.grants.GetDataAccess(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}

	// One object's credentials reach the grant's scope: the other objects,
	// and listings within it, need no call.
	first, _ := f.key(t, get(accessgrants.Object(env.Bucket, "alice/a.txt", types.PermissionRead)))
	f.calls(t, 1)
	for _, r := range []accessgrants.Request{
		accessgrants.Object(env.Bucket, "alice/b.txt", types.PermissionRead),
		accessgrants.Object(env.Bucket, "alice/deep/c.txt", types.PermissionRead),
		accessgrants.Prefix(env.Bucket, "alice/deep/", types.PermissionRead),
	} {
		if k, _ := f.key(t, get(r)); k != first {
			t.Fatalf("%s: other credentials", r.Target)
		}
	}
	f.calls(t, 1)
	if err := read(ctx, get(accessgrants.Object(env.Bucket, "alice/deep/c.txt", types.PermissionRead)), env.Bucket, "alice/deep/c.txt"); err != nil {
		t.Fatal(err)
	}

	// WRITE is another call; READWRITE serves both READ and WRITE after.
	get(accessgrants.Object(env.Bucket, "alice/new.txt", types.PermissionWrite))
	f.calls(t, 2)
	get(accessgrants.Prefix(env.Bucket, "alice/", types.PermissionReadwrite))
	f.calls(t, 3)
	// Another duration or a minimal privilege is another call, and a
	// minimal privilege serves its target only.
	long := accessgrants.Object(env.Bucket, "alice/a.txt", types.PermissionRead)
	long.Duration = 2 * time.Hour
	get(long)
	f.calls(t, 4)
	minimal := accessgrants.Object(env.Bucket, "alice/a.txt", types.PermissionRead)
	minimal.Privilege = types.PrivilegeMinimal
	get(minimal)
	get(minimal)
	f.calls(t, 5)
	minimal.Target = "s3://" + env.Bucket + "/alice/b.txt"
	get(minimal)
	f.calls(t, 6)
	if n := f.grants.Len(); n != 6 {
		t.Fatalf("Len = %d, want 6", n)
	}
}

func TestExpiryAsksAgain(t *testing.T) {
	f := newFixture(t)
	env := f.env
	env.AWS.Grant(env.Bucket, "alice/", "alice", tiptest.AccessRead)
	ctx := f.as(t, "alice")
	r := accessgrants.Prefix(env.Bucket, "alice/", types.PermissionRead)
	r.Duration = 15 * time.Minute
	cfg, err := f.grants.GetDataAccess(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := f.key(t, cfg)

	// Until the expiry window (5 minutes before expiry) they serve...
	env.Clock.Advance(10*time.Minute - time.Second)
	cfg, err = f.grants.GetDataAccess(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := f.key(t, cfg); k != first {
		t.Fatal("credentials outside the expiry window were not served")
	}
	f.calls(t, 1)
	// ...then a request asks again.
	env.Clock.Advance(time.Second)
	cfg, err = f.grants.GetDataAccess(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := f.key(t, cfg); k == first {
		t.Fatal("credentials within the expiry window were served")
	}
	f.calls(t, 2)
	if n := f.grants.Len(); n != 1 {
		t.Fatalf("Len = %d, want 1: the expired credentials are dropped", n)
	}
}

func TestMaxEntries(t *testing.T) {
	f := newFixture(t, func(o *accessgrants.Options) { o.MaxEntries = 3 })
	env := f.env
	ctx := f.as(t, "alice")
	for i := range 5 {
		env.AWS.Grant(env.Bucket, fmt.Sprintf("p%d/", i), "alice", tiptest.AccessRead)
	}
	get := func(i int) {
		t.Helper()
		if _, err := f.grants.GetDataAccess(ctx, accessgrants.Prefix(env.Bucket, fmt.Sprintf("p%d/", i), types.PermissionRead)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		get(i)
	}
	f.calls(t, 5)
	if n := f.grants.Len(); n != 3 {
		t.Fatalf("Len = %d, want 3", n)
	}
	get(4) // held
	get(2) // held, now the most recently used
	f.calls(t, 5)
	get(0) // dropped first: asked again, which drops 3
	f.calls(t, 6)
	get(2)
	get(4)
	f.calls(t, 6)
	get(3)
	f.calls(t, 7)
}

func TestDeniedIsTyped(t *testing.T) {
	f := newFixture(t)
	env := f.env
	env.AWS.Grant(env.Bucket, "alice/", "alice", tiptest.AccessRead)
	ctx := f.as(t, "alice")
	for _, r := range []accessgrants.Request{
		accessgrants.Prefix(env.Bucket, "bob/", types.PermissionRead),
		accessgrants.Prefix(env.Bucket, "alice/", types.PermissionWrite),
	} {
		for range 2 {
			_, err := f.grants.GetDataAccess(ctx, r)
			if !errors.Is(err, accessgrants.ErrDenied) {
				t.Fatalf("%s %s: %v, want ErrDenied", r.Permission, r.Target, err)
			}
			var e *accessgrants.Error
			var ae smithy.APIError
			if !errors.As(err, &e) || e.Op != "GetDataAccess" || e.Code != "AccessDenied" || !errors.As(err, &ae) {
				t.Fatalf("%v: not an *Error of GetDataAccess wrapping the SDK's", err)
			}
		}
	}
	f.calls(t, 4) // refusals are not held
	if f.grants.Len() != 0 {
		t.Fatal("a refusal was held")
	}

	// Other failures are not ErrDenied.
	env.AWS.SetFault("GetDataAccess", tiptest.Fault{Code: "InternalError"})
	_, err := f.grants.GetDataAccess(ctx, accessgrants.Prefix(env.Bucket, "alice/", types.PermissionRead))
	var e *accessgrants.Error
	if errors.Is(err, accessgrants.ErrDenied) || !errors.As(err, &e) || e.Code != "InternalError" {
		t.Fatalf("a 500: %v", err)
	}
}

func TestRefusedWithoutCaller(t *testing.T) {
	f := newFixture(t)
	env := f.env
	env.AWS.Grant(env.Bucket, "alice/", "alice", tiptest.AccessRead)
	full := f.as(t, "alice")
	cfg, _ := ctxcreds.Config(full)
	id, _ := ctxcreds.IdentityFrom(full)
	r := accessgrants.Prefix(env.Bucket, "alice/", types.PermissionRead)
	for name, ctx := range map[string]context.Context{
		"empty":             context.Background(),
		"config only":       ctxcreds.WithConfig(context.Background(), &cfg),
		"identity only":     ctxcreds.WithIdentity(context.Background(), id),
		"empty subject":     ctxcreds.WithIdentity(ctxcreds.WithConfig(context.Background(), &cfg), ctxcreds.NewIdentity("x", "", nil, time.Time{}, ctxcreds.AWSUser{})),
		"no credentials":    ctxcreds.WithIdentity(ctxcreds.WithConfig(context.Background(), &aws.Config{Region: "us-east-1"}), id),
		"zero identity set": ctxcreds.WithIdentity(ctxcreds.WithConfig(context.Background(), &cfg), ctxcreds.Identity{}),
	} {
		if _, err := f.grants.GetDataAccess(ctx, r); !errors.Is(err, accessgrants.ErrNoCaller) {
			t.Errorf("%s: GetDataAccess = %v, want ErrNoCaller", name, err)
		}
		if _, err := f.grants.ListCallerAccessGrants(ctx, ""); !errors.Is(err, accessgrants.ErrNoCaller) {
			t.Errorf("%s: ListCallerAccessGrants = %v, want ErrNoCaller", name, err)
		}
	}
	f.calls(t, 0)
}

func TestInvalidRequests(t *testing.T) {
	f := newFixture(t)
	ctx := f.as(t, "alice")
	ok := accessgrants.Prefix("amzn-s3-demo-bucket", "alice/", types.PermissionRead)
	for name, edit := range map[string]func(*accessgrants.Request){
		"no permission":      func(r *accessgrants.Request) { r.Permission = "" },
		"unknown permission": func(r *accessgrants.Request) { r.Permission = "ADMIN" },
		"not an S3 URI":      func(r *accessgrants.Request) { r.Target = "amzn-s3-demo-bucket/alice/*" },
		"bad bucket":         func(r *accessgrants.Request) { r.Target = "s3://Bad_Bucket/alice/*" },
		"inner wildcard":     func(r *accessgrants.Request) { r.Target = "s3://amzn-s3-demo-bucket/a*/b" },
		"object wildcard":    func(r *accessgrants.Request) { r.TargetType = types.S3PrefixTypeObject },
		"object, no key": func(r *accessgrants.Request) {
			*r = accessgrants.Object("amzn-s3-demo-bucket", "", types.PermissionRead)
		},
		"target type":        func(r *accessgrants.Request) { r.TargetType = "Folder" },
		"privilege":          func(r *accessgrants.Request) { r.Privilege = "Maximal" },
		"short duration":     func(r *accessgrants.Request) { r.Duration = 10 * time.Minute },
		"long duration":      func(r *accessgrants.Request) { r.Duration = 13 * time.Hour },
		"fractional seconds": func(r *accessgrants.Request) { r.Duration = time.Hour + time.Millisecond },
	} {
		r := ok
		edit(&r)
		if _, err := f.grants.GetDataAccess(ctx, r); !errors.Is(err, accessgrants.ErrRequest) {
			t.Errorf("%s: %v, want ErrRequest", name, err)
		}
	}
	if _, err := f.grants.ListCallerAccessGrants(ctx, "amzn-s3-demo-bucket/"); !errors.Is(err, accessgrants.ErrRequest) {
		t.Errorf("ListCallerAccessGrants of a scope without s3://: %v", err)
	}
	f.calls(t, 0)
}

func TestOptions(t *testing.T) {
	for name, o := range map[string]accessgrants.Options{
		"account":           {AccountID: "12345"},
		"negative bound":    {MaxEntries: -1},
		"negative window":   {DataAccessExpiryWindow: -time.Second},
		"negative timeout":  {Timeout: -time.Second},
		"window too long":   {DataAccessExpiryWindow: 15 * time.Minute},
		"account, letters":  {AccountID: "12345678901a"},
		"account, 13 digit": {AccountID: "1234567890123"},
	} {
		if _, err := accessgrants.New(o); !errors.Is(err, accessgrants.ErrConfig) {
			t.Errorf("%s: New = %v, want ErrConfig", name, err)
		}
	}
	if _, err := accessgrants.New(accessgrants.Options{}); err != nil {
		t.Fatalf("the zero Options: %v", err)
	}
}

func TestAccountFromSTS(t *testing.T) {
	f := newFixture(t, func(o *accessgrants.Options) { o.AccountID = "" })
	env := f.env
	env.AWS.Grant(env.Bucket, "alice/", "alice", tiptest.AccessRead)
	env.AWS.Grant(env.Bucket, "bob/", "bob", tiptest.AccessRead)
	before := env.AWS.Calls("GetCallerIdentity")
	for _, u := range []string{"alice", "bob"} {
		ctx := f.as(t, u)
		if _, err := f.grants.GetDataAccess(ctx, accessgrants.Prefix(env.Bucket, u+"/", types.PermissionRead)); err != nil {
			t.Fatal(err)
		}
		if _, err := f.grants.ListCallerAccessGrants(ctx, ""); err != nil {
			t.Fatal(err)
		}
	}
	if n := env.AWS.Calls("GetCallerIdentity") - before; n != 1 {
		t.Fatalf("GetCallerIdentity called %d times, want once", n)
	}
	ctx := f.as(t, "alice")
	cfg, _ := ctxcreds.Config(ctx)
	if id, err := accessgrants.CallerAccount(ctx, cfg); err != nil || id != env.AWS.AccountID() {
		t.Fatalf("CallerAccount = %q, %v", id, err)
	}
}

// countingClient passes calls to the SDK's client and counts them; a
// GetDataAccess starting sends a value on dataStarted unless it is full
// (or nil).
type countingClient struct {
	next        *s3control.Client
	data        atomic.Int32
	list        atomic.Int32
	dataStarted chan struct{}
}

func (c *countingClient) GetDataAccess(ctx context.Context, in *s3control.GetDataAccessInput, optFns ...func(*s3control.Options)) (*s3control.GetDataAccessOutput, error) {
	c.data.Add(1)
	select {
	case c.dataStarted <- struct{}{}:
	default:
	}
	return c.next.GetDataAccess(ctx, in, optFns...)
}

func (c *countingClient) ListCallerAccessGrants(ctx context.Context, in *s3control.ListCallerAccessGrantsInput, optFns ...func(*s3control.Options)) (*s3control.ListCallerAccessGrantsOutput, error) {
	c.list.Add(1)
	return c.next.ListCallerAccessGrants(ctx, in, optFns...)
}

// TestWrappedClients: clients of Options make the calls, with each
// caller's credentials, though they were built with the server's.
func TestWrappedClients(t *testing.T) {
	var client countingClient
	f := newFixture(t, func(o *accessgrants.Options) {
		o.DataAccessClient, o.ListClient = &client, &client
	})
	env := f.env
	client.next = s3control.NewFromConfig(env.Config()) // the server's own keys: S3 Access Grants would refuse them
	env.AWS.Grant(env.Bucket, "alice/", "alice", tiptest.AccessRead)
	ctx := f.as(t, "alice")
	cfg, err := f.grants.GetDataAccess(ctx, accessgrants.Prefix(env.Bucket, "alice/", types.PermissionRead))
	if err != nil {
		t.Fatal(err)
	}
	if _, owner := f.key(t, cfg); owner != "alice" {
		t.Fatalf("credentials of %q", owner)
	}
	if _, err := f.grants.ListCallerAccessGrants(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if client.data.Load() != 1 || client.list.Load() != 1 {
		t.Fatalf("the client made %d GetDataAccess and %d ListCallerAccessGrants, want 1 and 1", client.data.Load(), client.list.Load())
	}
	if ua := env.AWS.LastUserAgent("GetDataAccess"); !strings.Contains(ua, "p/tipkit#") {
		t.Fatalf("GetDataAccess user agent %q is not tagged", ua)
	}
}

func TestListCallerAccessGrants(t *testing.T) {
	f := newFixture(t)
	env := f.env
	env.AWS.Grant(env.Bucket, "alice/", env.AWS.UserID("alice"), tiptest.AccessReadWrite)
	env.AWS.Grant(env.Bucket, "reports/", env.AWS.UserID("alice"), tiptest.AccessRead)
	env.AWS.Grant(env.Bucket, "bob/", env.AWS.UserID("bob"), tiptest.AccessReadWrite)
	for i := range 1200 { // more than a page
		env.AWS.Grant("many-buckets", fmt.Sprintf("p%04d/", i), "carol", tiptest.AccessRead)
	}
	grants, err := f.grants.ListCallerAccessGrants(f.as(t, "alice"), "")
	if err != nil {
		t.Fatal(err)
	}
	want := []accessgrants.Grant{
		{Scope: "s3://" + env.Bucket + "/alice/*", Permission: types.PermissionReadwrite},
		{Scope: "s3://" + env.Bucket + "/reports/*", Permission: types.PermissionRead},
	}
	if fmt.Sprint(grants) != fmt.Sprint(want) {
		t.Fatalf("alice's grants %v, want %v", grants, want)
	}
	grants, err = f.grants.ListCallerAccessGrants(f.as(t, "alice"), "s3://"+env.Bucket+"/rep")
	if err != nil || fmt.Sprint(grants) != fmt.Sprint(want[1:]) {
		t.Fatalf("alice's grants under s3://%s/rep: %v, %v", env.Bucket, grants, err)
	}
	carol := f.as(t, "carol")
	grants, err = f.grants.ListCallerAccessGrants(carol, "")
	if err != nil || len(grants) != 1200 || grants[1199].Scope != "s3://many-buckets/p1199/*" {
		t.Fatalf("carol's %d grants, %v", len(grants), err)
	}
	if n := env.AWS.Calls("ListCallerAccessGrants"); n != 2+2 {
		t.Fatalf("Calls(ListCallerAccessGrants) = %d, want 4 (carol's in two pages)", n)
	}
	env.AWS.SetFault("ListCallerAccessGrants", tiptest.Fault{Code: "AccessDenied"})
	if _, err := f.grants.ListCallerAccessGrants(carol, ""); !errors.Is(err, accessgrants.ErrDenied) {
		t.Fatalf("a refused listing: %v", err)
	}
}

// TestHitDoesNotAllocate: held credentials are handed out without an
// allocation.
func TestHitDoesNotAllocate(t *testing.T) {
	f := newFixture(t)
	env := f.env
	env.AWS.Grant(env.Bucket, "alice/", "alice", tiptest.AccessRead)
	ctx := f.as(t, "alice")
	r := accessgrants.Object(env.Bucket, "alice/notes.txt", types.PermissionRead)
	if _, err := f.grants.GetDataAccess(ctx, r); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = f.grants.GetDataAccess(ctx, r) }); n != 0 {
		t.Fatalf("a hit allocates %v times", n)
	}
}

// A handler that overwrites the identity it read with another user's
// (keeping the rest, so that the middleware would serve it again) cannot
// make GetDataAccess vend that user's credentials on the caller's next
// request: the Cache keys by the caller's identity, which the handler
// changed only in its own copy.
func TestOverwrittenIdentityVendsNoOtherUsersCredentials(t *testing.T) {
	f := newFixture(t)
	env := f.env
	for _, u := range []string{"alice", "bob"} {
		env.AWS.Grant(env.Bucket, "shared/", env.AWS.UserID(u), tiptest.AccessRead)
	}
	req := accessgrants.Prefix(env.Bucket, "shared/", types.PermissionRead)
	bobCfg, err := f.grants.GetDataAccess(f.as(t, "bob"), req) // bob's credentials, held by the Cache
	if err != nil {
		t.Fatal(err)
	}
	bobKey, _ := f.key(t, bobCfg)

	alice := f.env.IdP.Token("alice", tiptest.WithLifetime(3*time.Hour))
	serve := func(h http.HandlerFunc) {
		t.Helper()
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+alice)
		w := httptest.NewRecorder()
		f.mw.Handler(h).ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("the middleware answered %d: %s", w.Code, w.Body.String())
		}
	}
	serve(func(w http.ResponseWriter, r *http.Request) {
		id, _ := ctxcreds.IdentityFrom(r.Context())
		id = ctxcreds.NewIdentity(id.Issuer(), "bob", id.Claims(), id.Expires(),
			ctxcreds.AWSUser{UserID: id.AWSUserID(), IdentityStoreID: id.IdentityStoreID()})
		if id.Subject() != "bob" {
			t.Error("the handler's own copy was not overwritten")
		}
	})
	serve(func(w http.ResponseWriter, r *http.Request) {
		cfg, err := f.grants.GetDataAccess(r.Context(), req)
		if err != nil {
			t.Error(err)
			return
		}
		if key, owner := f.key(t, cfg); owner != "alice" || key == bobKey {
			t.Errorf("alice's next request was vended %s of %q (bob's: %s)", key, owner, bobKey)
		}
	})
}
