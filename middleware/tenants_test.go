package middleware_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/tipkit/tipkit/ctxcreds"
	"github.com/tipkit/tipkit/dynamostore"
	"github.com/tipkit/tipkit/dynamostore/dynamotest"
	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/middleware/middlewaretest"
	"github.com/tipkit/tipkit/redisstore"
	"github.com/tipkit/tipkit/redisstore/redistest"
	"github.com/tipkit/tipkit/tiptest"
)

// customers are two tenants, each a tiptest environment of its own: acme
// in us-east-1, globex in eu-west-1. Both clocks start at the wall clock;
// advance moves them together.
type customers struct {
	acme, globex *tiptest.Env
}

func newCustomers(t *testing.T) customers {
	return customers{acme: tiptest.New(t), globex: tiptest.New(t, tiptest.WithRegion("eu-west-1"))}
}

func (c customers) advance(d time.Duration) {
	c.acme.Clock.Advance(d)
	c.globex.Clock.Advance(d)
}

// options are the options of a middleware serving both customers.
func (c customers) options() middleware.Options {
	return middleware.Options{
		Tenants: []middleware.Tenant{middlewaretest.Tenant(c.acme, "acme"), middlewaretest.Tenant(c.globex, "globex")},
		Now:     c.acme.Clock.Now,
	}
}

// newMiddleware returns a middleware serving both customers, with the
// options changed by edit.
func (c customers) newMiddleware(t testing.TB, edit ...func(*middleware.Options)) *middleware.Middleware {
	t.Helper()
	o := c.options()
	for _, f := range edit {
		f(&o)
	}
	m, err := middleware.New(context.Background(), o)
	if err != nil {
		t.Fatalf("middleware.New: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// calls returns the CreateTokenWithIAM and AssumeRole calls of env.
func calls(env *tiptest.Env) [2]int {
	return [2]int{env.AWS.Calls("CreateTokenWithIAM"), env.AWS.Calls("AssumeRole")}
}

// whoAmITenant answers with the caller's access key, subject, tenant and
// region, after calling STS GetCallerIdentity with them (which only the
// tenant's own AWS accepts).
var whoAmITenant = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	cfg, ok := ctxcreds.Config(r.Context())
	id, _ := ctxcreds.IdentityFrom(r.Context())
	if !ok {
		http.Error(w, "no config", http.StatusInternalServerError)
		return
	}
	creds, err := cfg.Credentials.Retrieve(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if _, err := sts.NewFromConfig(cfg).GetCallerIdentity(r.Context(), &sts.GetCallerIdentityInput{}); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"key": creds.AccessKeyID, "sub": id.Subject(), "tenant": id.Tenant(), "region": cfg.Region})
})

// tenantAnswer is what whoAmITenant answered.
type tenantAnswer struct{ key, sub, tenant, region string }

// serveTenant sends token to h and checks the answer is a 200 for user of
// tenant, in env's region, with credentials env's AWS issued to user.
func serveTenant(t testing.TB, h http.Handler, token string, env *tiptest.Env, tenant, user string) tenantAnswer {
	t.Helper()
	w := serve(h, request(token))
	if w.Code != http.StatusOK {
		t.Fatalf("%s of %s: status %d: %s", user, tenant, w.Code, w.Body.String())
	}
	var b map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
		t.Fatal(err)
	}
	s := tenantAnswer{b["key"], b["sub"], b["tenant"], b["region"]}
	if owner, ok := env.AWS.UserFor(s.key); !ok || owner != user || s.sub != user || s.tenant != tenant || s.region != env.AWS.Region() {
		t.Fatalf("%s of %s tenantAnswer as %+v (owner %q at the tenant's AWS: %v)", user, tenant, s, owner, ok)
	}
	return s
}

// Each token is exchanged at its own tenant's IAM Identity Center, in its
// region: two users in each tenant are 2 and 2 exchanges. The same name in
// both tenants is two users with distinct credentials, each issued by its
// own tenant's AWS, and a user held calls no AWS again.
func TestTenantsExchangeAtTheirOwnIdentityCenter(t *testing.T) {
	c := newCustomers(t)
	h := c.newMiddleware(t).Handler(whoAmITenant)
	tokens := map[string]string{
		"acme/alice": c.acme.IdP.Token("alice"), "acme/bob": c.acme.IdP.Token("bob"),
		"globex/alice": c.globex.IdP.Token("alice"), "globex/carol": c.globex.IdP.Token("carol"),
	}
	envs := map[string]*tiptest.Env{"acme": c.acme, "globex": c.globex}
	keys := map[string]string{}
	for round := range 2 {
		for who, tok := range tokens {
			tenant, user, _ := strings.Cut(who, "/")
			s := serveTenant(t, h, tok, envs[tenant], tenant, user)
			if round == 0 {
				keys[who] = s.key
			} else if s.key != keys[who] {
				t.Errorf("%s: held credentials changed from %s to %s", who, keys[who], s.key)
			}
		}
		if got := calls(c.acme); got != [2]int{2, 2} {
			t.Fatalf("round %d: acme's AWS saw %d CreateTokenWithIAM and %d AssumeRole, want 2 and 2", round, got[0], got[1])
		}
		if got := calls(c.globex); got != [2]int{2, 2} {
			t.Fatalf("round %d: globex's AWS saw %d CreateTokenWithIAM and %d AssumeRole, want 2 and 2", round, got[0], got[1])
		}
	}
	if keys["acme/alice"] == keys["globex/alice"] {
		t.Fatal("alice of acme and alice of globex share credentials")
	}
	if _, ok := c.globex.AWS.UserFor(keys["acme/alice"]); ok {
		t.Fatal("globex's AWS knows acme's alice's credentials")
	}
}

// A token signed by globex's identity provider that claims acme's iss is
// refused, 401 invalid_token, without any AWS call: acme's keys verify
// tokens of acme's iss. So is a token of an issuer no tenant lists.
func TestTenantsForgedIssuerRefused(t *testing.T) {
	c := newCustomers(t)
	h := c.newMiddleware(t).Handler(whoAmITenant)
	serveTenant(t, h, c.acme.IdP.Token("alice"), c.acme, "acme", "alice") // acme's keys are fetched
	before := calls(c.acme)
	stranger := tiptest.New(t)
	for name, tok := range map[string]string{
		"globex's signature, acme's iss": c.globex.IdP.Token("alice", tiptest.WithClaims(map[string]any{"iss": c.acme.IdP.Issuer()})),
		"acme's signature, globex's iss": c.acme.IdP.Token("alice", tiptest.WithClaims(map[string]any{"iss": c.globex.IdP.Issuer()})),
		"an issuer of no tenant":         stranger.IdP.Token("alice"),
	} {
		refusal(t, serve(h, request(tok)), http.StatusUnauthorized, "invalid_token")
		if calls(c.acme) != before || calls(c.globex) != [2]int{} || calls(stranger) != [2]int{} {
			t.Fatalf("%s: AWS was called: acme %v (before %v), globex %v, stranger %v", name, calls(c.acme), before, calls(c.globex), calls(stranger))
		}
	}
}

// New refuses the single-tenant fields together with Tenants, an issuer
// in two tenants, a tenant without issuers, two tenants of one name, and
// a tenant's exchange option that the top level owns, each with an error
// matching ErrConfig that names the fields or the issuer.
func TestTenantsNewRefuses(t *testing.T) {
	c := newCustomers(t)
	for _, tc := range []struct {
		name string
		edit func(*middleware.Options)
		want []string
	}{
		{"Issuer", func(o *middleware.Options) { o.Issuer = c.acme.IdP.Issuer() }, []string{"Issuer and Tenants"}},
		{"Audience", func(o *middleware.Options) { o.Audience = []string{"api"} }, []string{"Audience and Tenants"}},
		{"Exchange", func(o *middleware.Options) { o.Exchange = o.Tenants[0].Exchange }, []string{"Exchange and Tenants"}},
		{"Exchange.Config only", func(o *middleware.Options) { o.Exchange.Config.Region = "us-east-1" }, []string{"Exchange and Tenants"}},
		{"AWSConfig", func(o *middleware.Options) { o.AWSConfig = aws.Config{Region: "us-east-1"} }, []string{"AWSConfig and Tenants"}},
		{"Verify.Issuers", func(o *middleware.Options) { o.Verify.Issuers = o.Tenants[0].Issuers }, []string{"Verify.Issuers and Tenants"}},
		{"issuer in two tenants", func(o *middleware.Options) {
			o.Tenants[1].Issuers = append(o.Tenants[1].Issuers, o.Tenants[0].Issuers[0])
		}, []string{c.acme.IdP.Issuer(), "Tenants[0]", "Tenants[1]", "one tenant"}},
		{"no issuers", func(o *middleware.Options) { o.Tenants[1].Issuers = nil }, []string{"Tenants[1].Issuers"}},
		{"one name", func(o *middleware.Options) { o.Tenants[1].Name = "acme" }, []string{"Tenants[0]", "Tenants[1]", `"acme"`}},
		{"default name taken", func(o *middleware.Options) { o.Tenants[0].Name, o.Tenants[1].Name = "1", "" }, []string{"Tenants[0]", "Tenants[1]", `"1"`}},
		{"Exchange.Now", func(o *middleware.Options) { o.Tenants[1].Exchange.Now = time.Now }, []string{"Tenants[1].Exchange.Now"}},
		{"Exchange.TracerProvider", func(o *middleware.Options) { o.Tenants[0].Exchange.TracerProvider = noop.NewTracerProvider() }, []string{"Tenants[0].Exchange.TracerProvider"}},
		{"Exchange.WebTokenProvider", func(o *middleware.Options) {
			o.Tenants[0].Exchange.WebTokenProvider = func(context.Context) (string, error) { return "", nil }
		}, []string{"Tenants[0].Exchange.WebTokenProvider"}},
		{"no region", func(o *middleware.Options) {
			o.Tenants[1].AWSConfig.Region, o.Tenants[1].Exchange.Config.Region = "", ""
		}, []string{"Tenants[1].AWSConfig.Region"}},
		{"a tenant's bad exchange", func(o *middleware.Options) { o.Tenants[1].Exchange.AccessRoleArn = "" }, []string{"Tenants[1].Exchange"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := c.options()
			tc.edit(&o)
			m, err := middleware.New(context.Background(), o)
			if err == nil {
				_ = m.Close()
				t.Fatal("New accepted the options")
			}
			if !errors.Is(err, middleware.ErrConfig) {
				t.Fatalf("%v does not match ErrConfig", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
		})
	}
}

// A tenant without a Name is named after its index in Tenants; a server
// of one tenant names none.
func TestTenantsDefaultNames(t *testing.T) {
	c := newCustomers(t)
	h := c.newMiddleware(t, func(o *middleware.Options) { o.Tenants[0].Name, o.Tenants[1].Name = "", "" }).Handler(whoAmITenant)
	serveTenant(t, h, c.acme.IdP.Token("alice"), c.acme, "0", "alice")
	serveTenant(t, h, c.globex.IdP.Token("alice"), c.globex, "1", "alice")
	single := newMiddleware(t, c.acme).Handler(whoAmITenant)
	serveTenant(t, single, c.acme.IdP.Token("alice"), c.acme, "", "alice")
}

// A herd of concurrent first requests of several users in each tenant is
// one exchange per user per tenant, each request tenantAnswer with its own
// user's credentials of its own tenant.
func TestTenantsHerd(t *testing.T) {
	c := newCustomers(t)
	m := c.newMiddleware(t)
	h := m.Handler(whoAmITenant)
	const users, perUser = 20, 8
	envs := []*tiptest.Env{c.acme, c.globex}
	names := []string{"acme", "globex"}
	tokens := make([][]string, len(envs))
	for i, env := range envs {
		for u := range users {
			tokens[i] = append(tokens[i], env.IdP.Token(fmt.Sprintf("user%02d", u)))
		}
	}
	var wg sync.WaitGroup
	for range perUser {
		for i := range envs {
			for u := range users {
				wg.Go(func() { serveTenant(t, h, tokens[i][u], envs[i], names[i], fmt.Sprintf("user%02d", u)) })
			}
		}
	}
	wg.Wait()
	for i, env := range envs {
		if got := calls(env); got != [2]int{users, users} {
			t.Errorf("%s: %d CreateTokenWithIAM and %d AssumeRole for %d users", names[i], got[0], got[1], users)
		}
	}
	// Stats sum every tenant's Cache.
	if st := m.Stats(); st.Exchanges != 2*users || st.Users != 2*users || st.Requests != 2*users*perUser || st.OK != st.Requests {
		t.Errorf("stats %+v, want %d exchanges and users, %d requests", st, 2*users, 2*users*perUser)
	}
}

// Each tenant renews its users at its own AWS: inside the refresh window
// a request starts one renewal per user per tenant, and later requests
// get the renewed credentials of their own tenant.
func TestTenantsRenewApart(t *testing.T) {
	c := newCustomers(t)
	m := c.newMiddleware(t)
	h := m.Handler(whoAmITenant)
	ta, tg := c.acme.IdP.Token("alice", tiptest.WithLifetime(time.Hour)), c.globex.IdP.Token("alice", tiptest.WithLifetime(time.Hour))
	ka := serveTenant(t, h, ta, c.acme, "acme", "alice").key
	kg := serveTenant(t, h, tg, c.globex, "globex", "alice").key
	c.advance(inWindow)
	serveTenant(t, h, ta, c.acme, "acme", "alice")
	serveTenant(t, h, tg, c.globex, "globex", "alice")
	eventually(t, "both renewals", func() bool { return m.Stats().Renewals == 2 && m.Stats().InFlight == 0 })
	if calls(c.acme) != [2]int{1, 2} || calls(c.globex) != [2]int{1, 2} {
		t.Fatalf("acme %v, globex %v: want 1 exchange and 2 AssumeRole each", calls(c.acme), calls(c.globex))
	}
	if serveTenant(t, h, ta, c.acme, "acme", "alice").key == ka || serveTenant(t, h, tg, c.globex, "globex", "alice").key == kg {
		t.Fatal("a tenant still serves the credentials before the renewal")
	}
	c.advance(pastCreds)
	serveTenant(t, h, ta, c.acme, "acme", "alice") // renewed on the request path with the identity context held
	serveTenant(t, h, tg, c.globex, "globex", "alice")
	if calls(c.acme) != [2]int{1, 3} || calls(c.globex) != [2]int{1, 3} {
		t.Fatalf("after expiry: acme %v, globex %v: want 1 exchange and 3 AssumeRole each", calls(c.acme), calls(c.globex))
	}
}

// Two replicas serving the same two tenants share one Store, on Redis and
// on DynamoDB: each tenant's sessions are in a namespace of its own, even
// though both tenants have one application, access role and region (as
// tiptest environments of one region do), and a replica serves the
// other's users of either tenant from the Store without calling AWS.
func TestTenantsShareAStoreApart(t *testing.T) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	for _, engine := range []struct {
		name string
		// start returns a new Store on one engine for each call, and the
		// names of every entry on it.
		start func(t *testing.T) (newStore func() exchange.Store, names func() []string)
	}{
		{"redis", func(t *testing.T) (func() exchange.Store, func() []string) {
			srv := redistest.Start(t)
			return func() exchange.Store {
					client := srv.Client()
					t.Cleanup(func() { _ = client.Close() })
					store, err := redisstore.New(client, redisstore.Options{EncryptionKeys: [][]byte{key}, Timeout: 2 * time.Second})
					if err != nil {
						t.Fatal(err)
					}
					return store
				}, func() []string {
					keys, err := srv.Client().Keys(context.Background(), "*").Result()
					if err != nil {
						t.Fatal(err)
					}
					return keys
				}
		}},
		{"dynamodb", func(t *testing.T) (func() exchange.Store, func() []string) {
			srv := dynamotest.Start(t)
			const table = "tipkit-tenants"
			if err := dynamostore.CreateTable(context.Background(), srv.Client(), table); err != nil {
				t.Fatal(err)
			}
			return func() exchange.Store {
					store, err := dynamostore.New(srv.Client(), dynamostore.Options{Table: table, EncryptionKeys: [][]byte{key}, Timeout: 2 * time.Second})
					if err != nil {
						t.Fatal(err)
					}
					return store
				}, func() []string {
					out, err := srv.Client().Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(table)})
					if err != nil {
						t.Fatal(err)
					}
					var names []string
					for _, it := range out.Items {
						if pk, ok := it["pk"].(*types.AttributeValueMemberS); ok {
							names = append(names, pk.Value)
						}
					}
					return names
				}
		}},
	} {
		t.Run(engine.name, func(t *testing.T) {
			newStore, names := engine.start(t)
			acme, initech := tiptest.New(t), tiptest.New(t) // one region: one exchange namespace
			replica := func() http.Handler {
				m, err := middleware.New(context.Background(), middleware.Options{
					Tenants: []middleware.Tenant{middlewaretest.Tenant(acme, "acme"), middlewaretest.Tenant(initech, "initech")},
					Cache:   exchange.CacheOptions{Store: newStore()},
					Now:     acme.Clock.Now,
				})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = m.Close() })
				return m.Handler(whoAmITenant)
			}
			r0, r1 := replica(), replica()
			ta, ti := acme.IdP.Token("alice"), initech.IdP.Token("alice")
			ka := serveTenant(t, r0, ta, acme, "acme", "alice").key
			ki := serveTenant(t, r1, ti, initech, "initech", "alice").key
			if ka == ki {
				t.Fatal("alice of acme and alice of initech share credentials")
			}
			if serveTenant(t, r1, ta, acme, "acme", "alice").key != ka || serveTenant(t, r0, ti, initech, "initech", "alice").key != ki {
				t.Fatal("a replica did not serve the session the other stored")
			}
			if calls(acme) != [2]int{1, 1} || calls(initech) != [2]int{1, 1} {
				t.Fatalf("acme %v, initech %v: want one exchange each, the other replica reading the Store", calls(acme), calls(initech))
			}
			// Entries are named <prefix>:<namespace>:{<user>}:<kind>...:
			// two tenants, two namespaces.
			namespaces := map[string]bool{}
			all := names()
			for _, n := range all {
				if parts := strings.Split(n, ":"); len(parts) >= 4 {
					namespaces[parts[1]] = true
				}
			}
			if len(namespaces) != 2 {
				t.Fatalf("the Store's entries %q are in %d namespaces, want one per tenant", all, len(namespaces))
			}
		})
	}
}

// Close closes every tenant's Cache: afterwards a new user of either
// tenant is refused (503) instead of exchanged.
func TestTenantsCloseClosesEveryTenant(t *testing.T) {
	c := newCustomers(t)
	m, err := middleware.New(context.Background(), c.options())
	if err != nil {
		t.Fatal(err)
	}
	h := m.Handler(whoAmITenant)
	serveTenant(t, h, c.acme.IdP.Token("alice"), c.acme, "acme", "alice")
	serveTenant(t, h, c.globex.IdP.Token("alice"), c.globex, "globex", "alice")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for name, env := range map[string]*tiptest.Env{"acme": c.acme, "globex": c.globex} {
		before := calls(env)
		refusal(t, serve(h, request(env.IdP.Token("bob"))), http.StatusServiceUnavailable, "temporarily_unavailable")
		if calls(env) != before {
			t.Errorf("%s exchanged a token after Close", name)
		}
	}
}

// A request of a held user of a tenant costs what it costs with one
// tenant: the tenant was found when its token was first verified.
func TestTenantsHotPathAllocations(t *testing.T) {
	c := newCustomers(t)
	m := c.newMiddleware(t)
	var id ctxcreds.Identity
	h := m.Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { id, _ = ctxcreds.IdentityFrom(r.Context()) }))
	tok := c.globex.IdP.Token("alice")
	if w := serve(h, request(tok)); w.Code != http.StatusOK || id.Tenant() != "globex" {
		t.Fatalf("first request: %d %s, tenant %q", w.Code, w.Body.String(), id.Tenant())
	}
	r := request(tok)
	w := serve(h, r)
	bare := testing.AllocsPerRun(200, func() { http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}).ServeHTTP(w, r) })
	n := testing.AllocsPerRun(200, func() { h.ServeHTTP(w, r) })
	if n-bare > 3 {
		t.Fatalf("hot path allocates %v times per request (bare handler %v)", n, bare)
	}
	if id.Tenant() != "globex" {
		t.Fatalf("tenant %q on the hot path", id.Tenant())
	}
}

// A new Middleware swapped in for a configuration change (a tenant added)
// finds the sessions of the old one in the Store they share, so that a
// token the old one exchanged is served without calling AWS; without a
// Store, IAM Identity Center refuses that token again (403, as after a
// restart), and its user needs a fresh one.
func TestTenantsSwapFindsSessionsInTheStore(t *testing.T) {
	srv := redistest.Start(t)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	c := newCustomers(t)
	build := func(store bool, tenants ...middleware.Tenant) http.Handler {
		o := middleware.Options{Tenants: tenants, Now: c.acme.Clock.Now}
		if store {
			client := srv.Client()
			t.Cleanup(func() { _ = client.Close() })
			s, err := redisstore.New(client, redisstore.Options{EncryptionKeys: [][]byte{key}, Timeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			o.Cache.Store = s
		}
		m, err := middleware.New(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Close() })
		return m.Handler(whoAmITenant)
	}
	acme, globex := middlewaretest.Tenant(c.acme, "acme"), middlewaretest.Tenant(c.globex, "globex")
	for _, store := range []bool{true, false} {
		tok := c.acme.IdP.Token("alice")
		before := calls(c.acme)
		held := serveTenant(t, build(store, acme), tok, c.acme, "acme", "alice").key
		swapped := build(store, acme, globex)
		if !store {
			// As after a restart: AWS refuses the token it exchanged before.
			refusal(t, serve(swapped, request(tok)), http.StatusForbidden, "access_denied")
			serveTenant(t, swapped, c.acme.IdP.Token("alice"), c.acme, "acme", "alice")
			continue
		}
		if got := serveTenant(t, swapped, tok, c.acme, "acme", "alice").key; got != held {
			t.Errorf("with a Store: the new Middleware serves %s, the old one %s", got, held)
		}
		if got := calls(c.acme); got[0] != before[0]+1 {
			t.Errorf("with a Store: %d exchanges, want 1", got[0]-before[0])
		}
		serveTenant(t, swapped, c.globex.IdP.Token("alice"), c.globex, "globex", "alice")
	}
}

// BenchmarkTenantsHotPath is a request of a held user of the second of two
// tenants, against the same request with one tenant.
func BenchmarkTenantsHotPath(b *testing.B) {
	c := customers{acme: tiptest.New(b), globex: tiptest.New(b, tiptest.WithRegion("eu-west-1"))}
	for _, bm := range []struct {
		name string
		m    *middleware.Middleware
	}{{"one", newMiddleware(b, c.globex)}, {"twoTenants", c.newMiddleware(b)}} {
		m := bm.m
		b.Run(bm.name, func(b *testing.B) {
			h := m.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			r := request(c.globex.IdP.Token("alice"))
			if w := serve(h, r); w.Code != http.StatusOK {
				b.Fatalf("%d %s", w.Code, w.Body)
			}
			w := serve(h, r)
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
		})
	}
}

// The metrics of every tenant's Cache add up under the shared
// MeterProvider: exchanges and users count both tenants.
func TestTenantsMetricsAddUp(t *testing.T) {
	c := newCustomers(t)
	tel := newTelemetry(t)
	h := c.newMiddleware(t, tel.options).Handler(whoAmITenant)
	serveTenant(t, h, c.acme.IdP.Token("alice"), c.acme, "acme", "alice")
	serveTenant(t, h, c.acme.IdP.Token("bob"), c.acme, "acme", "bob")
	serveTenant(t, h, c.globex.IdP.Token("alice"), c.globex, "globex", "alice")
	ms := tel.metrics(t)
	if n := sum(t, ms, "tipkit.exchanges", attribute.String("tipkit.result", "ok")); n != 3 {
		t.Errorf("tipkit.exchanges ok: %d, want 3", n)
	}
	if n := sum(t, ms, "tipkit.users"); n != 3 {
		t.Errorf("tipkit.users: %d, want 3\n%s", n, tel.dump(t))
	}
	if n := sum(t, ms, "tipkit.requests", attribute.String("tipkit.outcome", "ok")); n != 3 {
		t.Errorf("tipkit.requests ok: %d, want 3", n)
	}
}

// One tenant's sessions are shaped by its own hook, at the exchange and at
// each renewal; the other tenant's are not: acme's sessions carry its data
// accessor's ExternalId, the user as a tag and as source identity, before
// and after a renewal half an hour later, and globex's carry nothing.
func TestTenantsShapedSessions(t *testing.T) {
	c := newCustomers(t)
	m := c.newMiddleware(t, func(o *middleware.Options) {
		o.Tenants[0].Exchange.Session = func(claims map[string]any) (exchange.SessionOptions, error) {
			sub, _ := claims["sub"].(string)
			return exchange.SessionOptions{
				Tags:           map[string]string{"qbusiness-dataaccessor:ExternalId": "acme-external-id", "user": sub},
				SourceIdentity: sub,
			}, nil
		}
	})
	h := m.Handler(whoAmITenant)
	tokens := map[string]string{"acme": c.acme.IdP.Token("alice"), "globex": c.globex.IdP.Token("alice")}
	envs := map[string]*tiptest.Env{"acme": c.acme, "globex": c.globex}
	check := func(when string) map[string]string {
		keys := map[string]string{}
		for tenant, env := range envs {
			a := serveTenant(t, h, tokens[tenant], env, tenant, "alice")
			keys[tenant] = a.key
			info, ok := env.AWS.Session(a.key)
			shaped := info.Tags["qbusiness-dataaccessor:ExternalId"] == "acme-external-id" && info.Tags["user"] == "alice" && info.SourceIdentity == "alice"
			plain := len(info.Tags) == 0 && info.SourceIdentity == ""
			if !ok || tenant == "acme" && !shaped || tenant == "globex" && !plain {
				t.Errorf("%s: alice's session at %s carries %+v", when, tenant, info)
			}
		}
		return keys
	}
	first := check("at the exchange")
	c.advance(30 * time.Minute) // past the credentials' 15 minutes
	renewed := check("after a renewal")
	for tenant := range envs {
		if first[tenant] == renewed[tenant] {
			t.Errorf("%s: alice's credentials were not renewed", tenant)
		}
		if n := envs[tenant].AWS.Calls("CreateTokenWithIAM"); n != 1 {
			t.Errorf("%s: %d CreateTokenWithIAM, want 1 (renewed with the identity context)", tenant, n)
		}
	}
}
