package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/middleware/middlewaretest"
	"github.com/tipkit/tipkit/tiptest"
)

func TestRunFlags(t *testing.T) {
	noEnv := func(string) string { return "" }
	for _, tt := range []struct {
		args []string
		code int
		out  string // in stdout or stderr
	}{
		{[]string{"-h"}, 0, "-tenants"},
		{[]string{"-nope"}, 2, "flag provided but not defined"},
		{[]string{"extra"}, 2, "unexpected argument"},
		{[]string{"-tenants", filepath.Join(t.TempDir(), "missing.json")}, 2, "missing.json"},
		{[]string{"-selftest"}, 0, "globex's token claiming acme's iss"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		var stdout, stderr bytes.Buffer
		if code := run(ctx, tt.args, noEnv, &stdout, &stderr); code != tt.code {
			t.Errorf("%v: exit code %d, want %d\n%s%s", tt.args, code, tt.code, stdout.String(), stderr.String())
		}
		cancel()
		if !strings.Contains(stdout.String()+stderr.String(), tt.out) {
			t.Errorf("%v: the output does not hold %q:\n%s%s", tt.args, tt.out, stdout.String(), stderr.String())
		}
		if tt.args[0] == "-selftest" && strings.Contains(stdout.String(), "FAIL") {
			t.Errorf("the self-test reports a failure:\n%s", stdout.String())
		}
	}
}

func TestLoadTenants(t *testing.T) {
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	write := func(body string) string {
		p := filepath.Join(t.TempDir(), "tenants.json")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := `[{"name": "acme", "issuer": "https://acme.example.com", "audience": ["api"],
	  "application_arn": "arn:aws:sso::111122223333:application/ssoins-1111222233334444/apl-1111222233334444",
	  "access_role_arn": "arn:aws:iam::111122223333:role/UserAccess",
	  "application_role_arn": "arn:aws:iam::111122223333:role/TokenExchange", "region": "us-east-1"},
	 {"name": "globex", "issuer": "https://globex.example.com", "audience": ["api"],
	  "application_arn": "arn:aws:sso::444455556666:application/ssoins-5555666677778888/apl-5555666677778888",
	  "access_role_arn": "arn:aws:iam::444455556666:role/UserAccess", "region": "eu-west-1"}]`
	tenants, err := loadTenants(context.Background(), write(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(tenants) != 2 || tenants[0].Name != "acme" || tenants[1].AWSConfig.Region != "eu-west-1" ||
		tenants[1].Exchange.SSOOIDCClient == nil || tenants[0].Exchange.SSOOIDCClient != nil {
		t.Fatalf("tenants %+v", tenants)
	}
	m, err := middleware.New(context.Background(), middleware.Options{Tenants: tenants})
	if err != nil {
		t.Fatalf("the middleware refuses the file's tenants: %v", err)
	}
	_ = m.Close()
	for name, body := range map[string]string{
		"not JSON":      "nope",
		"unknown field": `[{"name": "acme", "region": "us-east-1", "role": "x"}]`,
		"empty":         `[]`,
		"no region":     `[{"name": "acme", "issuer": "https://acme.example.com"}]`,
	} {
		if _, err := loadTenants(context.Background(), write(body)); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}

// A configuration change swaps the middleware: a customer added is served
// at once, one removed is refused, and a configuration New refuses leaves
// the running one in place.
func TestConfigure(t *testing.T) {
	c, err := startCustomers()
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	srv := &server{app: whoami{}}
	defer srv.close()
	status := func(env *tiptest.Env) int {
		r := httptest.NewRequest(http.MethodGet, "/whoami", nil)
		r.Header.Set("Authorization", "Bearer "+env.IdP.Token("alice"))
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		return w.Code
	}
	ctx := context.Background()
	acme, globex := middlewaretest.Tenant(c.acme, "acme"), middlewaretest.Tenant(c.globex, "globex")
	if err := srv.configure(ctx, []middleware.Tenant{acme}); err != nil {
		t.Fatal(err)
	}
	if a, g := status(c.acme), status(c.globex); a != http.StatusOK || g != http.StatusUnauthorized {
		t.Fatalf("acme only: acme %d, globex %d", a, g)
	}
	if err := srv.configure(ctx, []middleware.Tenant{acme, globex}); err != nil {
		t.Fatal(err)
	}
	if a, g := status(c.acme), status(c.globex); a != http.StatusOK || g != http.StatusOK {
		t.Fatalf("both: acme %d, globex %d", a, g)
	}
	if err := srv.configure(ctx, []middleware.Tenant{acme, middlewaretest.Tenant(c.globex, "acme")}); err == nil {
		t.Fatal("two tenants named acme were accepted")
	}
	if g := status(c.globex); g != http.StatusOK {
		t.Fatalf("after a refused configuration: globex %d", g)
	}
	if err := srv.configure(ctx, []middleware.Tenant{globex}); err != nil {
		t.Fatal(err)
	}
	if a, g := status(c.acme), status(c.globex); a != http.StatusUnauthorized || g != http.StatusOK {
		t.Fatalf("globex only: acme %d, globex %d", a, g)
	}
}
