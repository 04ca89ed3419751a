package middleware_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"sync/atomic"

	"github.com/tipkit/tipkit/ctxcreds"
	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/tiptest"
	"github.com/tipkit/tipkit/verify"
)

// customerTenant returns the tenant of a customer whose identity provider
// and IAM Identity Center env stands for.
func customerTenant(name string, env *tiptest.Env) middleware.Tenant {
	cfg := env.Config() // in production: the Identity Center instance's region, the server's credentials
	base := cfg
	base.Credentials = nil
	return middleware.Tenant{
		Name:    name,
		Issuers: []verify.Issuer{{Issuer: env.IdP.Issuer(), Audience: []string{env.IdP.Audience()}}},
		Exchange: exchange.Options{
			ApplicationArn:     env.ApplicationArn,
			AccessRoleArn:      env.AccessRoleArn,
			ApplicationRoleArn: env.ApplicationRoleArn,
			Config:             cfg,
		},
		AWSConfig: base,
	}
}

// bearer sends a request with token to h and returns its status and body.
func bearer(h http.Handler, token string) (int, string) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

// One server serves two customers, each with its own identity provider and
// its own IAM Identity Center instance in its own region: a token's iss
// picks its customer, and the handler is told which.
func ExampleTenant() {
	acme, err := tiptest.NewEnv()
	if err != nil {
		log.Fatal(err)
	}
	defer acme.Close()
	globex, err := tiptest.NewEnv(tiptest.WithRegion("eu-west-1"))
	if err != nil {
		log.Fatal(err)
	}
	defer globex.Close()

	m, err := middleware.New(context.Background(), middleware.Options{
		Tenants: []middleware.Tenant{customerTenant("acme", acme), customerTenant("globex", globex)},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := ctxcreds.IdentityFrom(r.Context())
		cfg, _ := ctxcreds.Config(r.Context())
		fmt.Fprintf(w, "%s of %s in %s", id.Subject(), id.Tenant(), cfg.Region)
	}))

	fmt.Println(bearer(h, acme.IdP.Token("alice")))
	fmt.Println(bearer(h, globex.IdP.Token("alice")))
	fmt.Println(acme.AWS.Calls("CreateTokenWithIAM"), globex.AWS.Calls("CreateTokenWithIAM"))
	// Output:
	// 200 alice of acme in us-east-1
	// 200 alice of globex in eu-west-1
	// 1 1
}

// A Middleware's tenants are fixed. To add or remove one without a
// restart, the server builds a new Middleware from the new configuration,
// swaps it in atomically, and closes the old one: later requests reach
// the new one, and requests under way finish on the old one (one that
// would start an exchange after Close is answered 503 with Retry-After,
// and its retry reaches the new one). Without a Store
// shared by both, the new one knows no session of the old one: a token
// the old one exchanged is refused by IAM Identity Center (403), as after
// a restart, and its user needs a fresh token.
func ExampleNew_addTenant() {
	acme, err := tiptest.NewEnv()
	if err != nil {
		log.Fatal(err)
	}
	defer acme.Close()
	globex, err := tiptest.NewEnv(tiptest.WithRegion("eu-west-1"))
	if err != nil {
		log.Fatal(err)
	}
	defer globex.Close()

	var current atomic.Pointer[middleware.Middleware]
	configure := func(tenants ...middleware.Tenant) error {
		m, err := middleware.New(context.Background(), middleware.Options{Tenants: tenants})
		if err != nil {
			return err // the server keeps its current configuration
		}
		if old := current.Swap(m); old != nil {
			return old.Close() // waits for the exchanges under way
		}
		return nil
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := ctxcreds.IdentityFrom(r.Context())
		fmt.Fprintf(w, "%s of %s", id.Subject(), id.Tenant())
	})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := current.Load()
		r2, err := m.Authenticate(r)
		if err != nil {
			m.HandleError(w, r, err)
			return
		}
		app.ServeHTTP(w, r2)
	})

	if err := configure(customerTenant("acme", acme)); err != nil {
		log.Fatal(err)
	}
	fmt.Println(bearer(h, acme.IdP.Token("alice")))
	code, _ := bearer(h, globex.IdP.Token("bob"))
	fmt.Println(code, "before globex is added")

	if err := configure(customerTenant("acme", acme), customerTenant("globex", globex)); err != nil {
		log.Fatal(err)
	}
	fmt.Println(bearer(h, globex.IdP.Token("bob")))
	fmt.Println(bearer(h, acme.IdP.Token("alice"))) // a fresh token of alice
	defer current.Load().Close()
	// Output:
	// 200 alice of acme
	// 401 before globex is added
	// 200 bob of globex
	// 200 alice of acme
}
