package grpctip_test

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/middleware/middlewaretest"
	"github.com/tipkit/tipkit/tiptest"
)

// TestTenants checks that gRPC handlers, unary and streaming, see the
// tenant of each caller, with credentials of the caller's own tenant.
func TestTenants(t *testing.T) {
	acme, globex := tiptest.New(t), tiptest.New(t, tiptest.WithRegion("eu-west-1"))
	m, err := middleware.New(context.Background(), middleware.Options{
		Tenants: []middleware.Tenant{middlewaretest.Tenant(acme, "acme"), middlewaretest.Tenant(globex, "globex")}, Now: acme.Clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	for name, env := range map[string]*tiptest.Env{"acme": acme, "globex": globex} {
		conn := serveWho(t, env, m) // whoServer names users of env's AWS only
		tok := env.IdP.Token("alice")
		want := name + "/alice alice"
		if got, code := call(t, conn, "/grpctip.test.Who/Call", tok); code != codes.OK || got != want {
			t.Errorf("alice of %s, unary: %q %v, want %q", name, got, code, want)
		}
		if header, _, err := chat(t, conn, "/grpctip.test.Who/Chat", tok, "hi"); err != nil || header != want {
			t.Errorf("alice of %s, stream: %q %v, want %q", name, header, err, want)
		}
	}
}
