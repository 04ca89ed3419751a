// Package middlewaretest wires a [middleware.Middleware] to a
// [tiptest.Env], for the tests of a server that uses the middleware: the
// issuer and audience of the local identity provider, the local IAM
// Identity Center application and roles, the local AWS endpoints, and the
// environment's clock, so that a test that moves env.Clock moves the
// middleware's token checks and credential expiry with it.
//
//	env := tiptest.New(t)
//	mw := middlewaretest.New(t, env)
//	srv := httptest.NewServer(mw.Handler(myHandler))
//	// ... requests with env.IdP.Token("alice") ...
//	env.Clock.Advance(time.Hour) // tokens and credentials expire for the middleware too
package middlewaretest

import (
	"context"
	"testing"

	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/tiptest"
	"github.com/tipkit/tipkit/verify"
)

// Options returns the options of a middleware served by env: Issuer and
// Audience of env.IdP; Exchange with env's application, roles and AWS
// configuration (the application role signs the exchange, as in
// production); AWSConfig, the base of each user's configuration, on env's
// endpoints without the server's keys; and Now, env.Clock.Now.
func Options(env *tiptest.Env) middleware.Options {
	base := env.Config()
	base.Credentials = nil // each user's configuration gets the user's credentials
	return middleware.Options{
		Issuer:   env.IdP.Issuer(),
		Audience: []string{env.IdP.Audience()},
		Exchange: exchange.Options{
			ApplicationArn:     env.ApplicationArn,
			AccessRoleArn:      env.AccessRoleArn,
			ApplicationRoleArn: env.ApplicationRoleArn,
			Config:             base,
		},
		AWSConfig: base,
		Now:       env.Clock.Now,
	}
}

// New returns a Middleware on [Options] of env, changed by edit in order,
// and closes it when tb ends. It fails tb if the options are refused.
func New(tb testing.TB, env *tiptest.Env, edit ...func(*middleware.Options)) *middleware.Middleware {
	tb.Helper()
	o := Options(env)
	for _, f := range edit {
		f(&o)
	}
	m, err := middleware.New(context.Background(), o)
	if err != nil {
		tb.Fatalf("middleware.New: %v", err)
	}
	tb.Cleanup(func() { _ = m.Close() })
	return m
}

// Tenant returns a tenant named name served by env, for a middleware of
// several tenants (middleware.Options.Tenants): env.IdP's issuer and
// audience, and the Exchange and AWSConfig of [Options]. The top-level
// settings, Now among them, are the caller's to set.
func Tenant(env *tiptest.Env, name string) middleware.Tenant {
	o := Options(env)
	return middleware.Tenant{
		Name:      name,
		Issuers:   []verify.Issuer{{Issuer: o.Issuer, Audience: o.Audience}},
		Exchange:  o.Exchange,
		AWSConfig: o.AWSConfig,
	}
}
