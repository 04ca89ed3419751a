package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/tipkit/tipkit/ctxcreds"
	"github.com/tipkit/tipkit/tiptest"
)

// keyHeader carries, in the self-test only, the access key of the
// credentials the handler was given, so that the self-test can ask each
// customer's AWS whose they are.
const keyHeader = "X-Selftest-Access-Key"

// withKey sets keyHeader on the answers of next.
func withKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cfg, ok := ctxcreds.Config(r.Context()); ok {
			if creds, err := cfg.Credentials.Retrieve(r.Context()); err == nil {
				w.Header().Set(keyHeader, creds.AccessKeyID)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// selfTest serves GET /whoami for two local customers on a loopback port,
// sends it requests of two users of each (one name in both), a repeated
// one, a forged token and none, prints a line per request, and returns an
// error naming every answer that was not the expected one.
func selfTest(ctx context.Context, stdout io.Writer) error {
	c, err := startCustomers()
	if err != nil {
		return err
	}
	defer c.close()
	srv := &server{app: withKey(whoami{})}
	if err := srv.configure(ctx, c.tenants()); err != nil {
		return err
	}
	defer srv.close()
	hs := httptest.NewServer(srv)
	defer hs.Close()
	fmt.Fprintln(stdout, "tenants self-test: two customers, acme (us-east-1) and globex (eu-west-1), each a tiptest identity provider, IAM Identity Center and STS; one server")

	var failed []string
	check := func(what string, ok bool, line string) {
		mark := "ok  "
		if !ok {
			mark = "FAIL"
			failed = append(failed, what+": "+line)
		}
		fmt.Fprintf(stdout, "%s %-38s %s\n", mark, what, line)
	}
	get := func(token string) (int, answer, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, hs.URL+"/whoami", nil)
		if err != nil {
			return 0, answer{}, "", err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, answer{}, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		var a answer
		if resp.StatusCode == http.StatusOK {
			err = errors.Join(err, json.Unmarshal(body, &a))
		}
		return resp.StatusCode, a, resp.Header.Get(keyHeader), err
	}

	envs := map[string]*tiptest.Env{"acme": c.acme, "globex": c.globex}
	regions := map[string]string{"acme": "us-east-1", "globex": "eu-west-1"}
	tokens := map[string]string{}
	keys := map[string]string{}
	for _, who := range []string{"acme/alice", "acme/bob", "globex/alice", "globex/carol", "acme/alice"} {
		tenant, user, _ := strings.Cut(who, "/")
		env := envs[tenant]
		tok, again := tokens[who]
		if !again {
			tok = env.IdP.Token(user)
			tokens[who] = tok
		}
		code, a, key, err := get(tok)
		if err != nil {
			return err
		}
		owner, _ := env.AWS.UserFor(key) // only the tenant's own AWS knows its credentials
		what := who
		if again {
			what += " again"
		}
		ok := code == http.StatusOK && a.Tenant == tenant && a.Subject == user && a.Region == regions[tenant] && owner == user
		switch {
		case again && key != keys[who]:
			ok = false
			what += " (other credentials)"
		case !again:
			keys[who] = key
		}
		check(what, ok, fmt.Sprintf("%d tenant %q subject %q region %s, credentials of %q at %s", code, a.Tenant, a.Subject, a.Region, owner, tenant))
		if !again {
			// acme's sessions carry its data accessor's tag; globex's none.
			info, _ := env.AWS.Session(key)
			shaped := info.Tags["qbusiness-dataaccessor:ExternalId"] == acmeExternalID && info.Tags["user"] == user && info.SourceIdentity == user
			plain := len(info.Tags) == 0 && info.SourceIdentity == ""
			check(who+"'s session", tenant == "acme" && shaped || tenant == "globex" && plain,
				fmt.Sprintf("tags %v, source identity %q", info.Tags, info.SourceIdentity))
		}
	}
	check("alice of acme, alice of globex", keys["acme/alice"] != keys["globex/alice"], "two users, two sessions")
	for _, tenant := range []string{"acme", "globex"} {
		n := envs[tenant].AWS.Calls("CreateTokenWithIAM")
		check("exchanges at "+tenant+"'s Identity Center", n == 2, fmt.Sprintf("%d CreateTokenWithIAM for 2 users", n))
	}

	calls := func() int {
		return c.acme.AWS.Calls("CreateTokenWithIAM") + c.acme.AWS.Calls("AssumeRole") +
			c.globex.AWS.Calls("CreateTokenWithIAM") + c.globex.AWS.Calls("AssumeRole")
	}
	before := calls()
	for _, refused := range []struct{ what, token string }{
		{"globex's token claiming acme's iss", c.globex.IdP.Token("alice", tiptest.WithClaims(map[string]any{"iss": c.acme.IdP.Issuer()}))},
		{"no token", ""},
	} {
		what := refused.what
		code, _, _, err := get(refused.token)
		if err != nil {
			return err
		}
		check(what, code == http.StatusUnauthorized && calls() == before, fmt.Sprintf("%d, %d AWS calls", code, calls()-before))
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	return nil
}
