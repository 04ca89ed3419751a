package echotip_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/tipkit/tipkit/adapters/echotip"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/middleware/middlewaretest"
	"github.com/tipkit/tipkit/tiptest"
)

// TestTenants checks that an Echo handler sees the tenant of each caller,
// and credentials of the caller's own tenant, as net/http handlers do.
func TestTenants(t *testing.T) {
	acme, globex := tiptest.New(t), tiptest.New(t, tiptest.WithRegion("eu-west-1"))
	m, err := middleware.New(context.Background(), middleware.Options{
		Tenants: []middleware.Tenant{middlewaretest.Tenant(acme, "acme"), middlewaretest.Tenant(globex, "globex")}, Now: acme.Clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	e := echo.New()
	e.Use(echotip.New(m))
	e.GET("/api", func(c echo.Context) error {
		cfg, _ := echotip.Config(c)
		id, _ := echotip.Identity(c)
		creds, err := cfg.Credentials.Retrieve(c.Request().Context())
		if err != nil {
			return err
		}
		return c.String(http.StatusOK, fmt.Sprintf("%s %s %s", id.Tenant(), id.Subject(), creds.AccessKeyID))
	})
	for name, env := range map[string]*tiptest.Env{"acme": acme, "globex": globex} {
		w := serve(e, "/api", env.IdP.Token("alice"))
		var tenant, sub, key string
		if _, err := fmt.Sscan(w.Body.String(), &tenant, &sub, &key); err != nil || w.Code != http.StatusOK {
			t.Fatalf("%s: %d %q", name, w.Code, w.Body)
		}
		if owner, _ := env.AWS.UserFor(key); tenant != name || sub != "alice" || owner != "alice" {
			t.Errorf("alice of %s: handler saw tenant %q, subject %q, credentials of %q at %s", name, tenant, sub, owner, name)
		}
	}
}
