package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tipkit/tipkit/tiptest"
)

// offLoopbackGuard is an HTTP client that dials loopback only, and
// records every other address it was asked to dial: no test request may
// leave the machine, even one the doctor should have refused.
type offLoopbackGuard struct {
	mu     sync.Mutex
	dialed []string
}

func (g *offLoopbackGuard) client() *http.Client {
	var dialer net.Dialer
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, _ := net.SplitHostPort(addr)
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				g.mu.Lock()
				g.dialed = append(g.dialed, addr)
				g.mu.Unlock()
				return nil, fmt.Errorf("test: refused to dial %s off loopback", addr)
			}
			return dialer.DialContext(ctx, network, addr)
		},
	}}
}

func (g *offLoopbackGuard) offLoopback() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.dialed...)
}

// redirectingIssuer is an issuer whose discovery document is reached
// through hops redirects on itself, then one to final when it is not
// empty; without final, the last hop serves the document (of env's
// identity provider, with the issuer's own URL as issuer).
func redirectingIssuer(t *testing.T, env *tiptest.Env, hops int, final string) *httptest.Server {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := 0
		if rest, isHop := strings.CutPrefix(r.URL.Path, "/hop/"); isHop {
			n, _ = strconv.Atoi(rest)
		}
		switch {
		case n < hops:
			http.Redirect(w, r, fmt.Sprintf("/hop/%d", n+1), http.StatusFound)
		case final != "":
			http.Redirect(w, r, final, http.StatusFound)
		default:
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]string{
				"issuer": srv.URL, "jwks_uri": env.IdP.Issuer() + "/.well-known/jwks.json",
			})
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestDiscoveryRedirects follows the discovery document through
// redirects under the verifier's rule: https, or http on loopback, and
// at most 5 redirects.
func TestDiscoveryRedirects(t *testing.T) {
	env := tiptest.New(t)
	for _, tc := range []struct {
		name  string
		hops  int
		final string
		want  string // "" for a discovery that passes; else a part of its cause
	}{
		{"plain http off loopback", 1, "http://example.invalid/.well-known/openid-configuration", "plain http outside loopback"},
		{"plain http off loopback at once", 0, "http://203.0.113.7/.well-known/openid-configuration", "plain http outside loopback"},
		{"not http", 0, "ftp://example.invalid/.well-known/openid-configuration", "neither https nor http"},
		{"six redirects", 6, "", "stopped after 5 redirects"},
		{"loopback redirects", 3, "", ""},
		{"five redirects", 5, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			issuer := redirectingIssuer(t, env, tc.hops, tc.final)
			token := env.IdP.Token("alice", tiptest.WithClaims(map[string]any{"iss": issuer.URL}))
			sys, stdout, stderr := testSystem(env, token, map[string]string{envIssuer: issuer.URL})
			var guard offLoopbackGuard
			sys.httpClient = guard.client()
			_, results := runJSON(t, sys, stdout, stderr)
			if dialed := guard.offLoopback(); len(dialed) > 0 {
				t.Errorf("the doctor dialed %q off loopback", dialed)
			}
			r := find(t, results, "issuer.discovery")
			if tc.want == "" {
				if r.Status != statusOK {
					t.Errorf("issuer.discovery: %s %s%s", r.Status, r.Detail, r.Cause)
				}
				return
			}
			if r.Status != statusFail || !strings.Contains(r.Cause, tc.want) || !strings.Contains(r.Cause, "redirect") {
				t.Errorf("issuer.discovery: %s %q; want a FAIL saying %q", r.Status, r.Detail+r.Cause, tc.want)
			}
		})
	}
}

// countingIssuer is an issuer that counts the requests it is sent and
// answers none of them usefully.
func countingIssuer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n.Add(1)
		http.NotFound(w, nil)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// TestTokenIssuerNotFetched gives a token whose iss is not TIPKIT_ISSUER:
// the doctor fails it and fetches nothing from the iss, which anyone who
// writes a token can choose, unless -follow-token-issuer asks it to.
func TestTokenIssuerNotFetched(t *testing.T) {
	env := tiptest.New(t)
	for _, tc := range []struct {
		name      string
		vars      map[string]string
		args      []string
		wantFetch bool
		wantSkip  string // what issuer.discovery's skip says
	}{
		{"another issuer configured", nil, nil, false, "see issuer.config"},
		{"no issuer configured", map[string]string{envIssuer: ""}, nil, false, "TIPKIT_ISSUER (-issuer) is not set"},
		{"asked to follow", nil, []string{"-follow-token-issuer"}, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			other, requests := countingIssuer(t)
			token := env.IdP.Token("alice", tiptest.WithClaims(map[string]any{"iss": other.URL}))
			sys, stdout, stderr := testSystem(env, token, tc.vars)
			code, results := runJSON(t, sys, stdout, stderr, tc.args...)
			if got := requests.Load(); (got > 0) != tc.wantFetch {
				t.Errorf("%d requests to the token's iss; want some: %v", got, tc.wantFetch)
			}
			if tc.vars == nil {
				if r := find(t, results, "issuer.config"); code != 1 || r.Status != statusFail || !strings.Contains(r.Cause, "is not the token's iss") {
					t.Errorf("exit %d, issuer.config %s %q: want a FAIL", code, r.Status, r.Cause)
				}
			}
			if tc.wantSkip != "" {
				skipped("issuer.discovery", tc.wantSkip)(t, env, results)
				skipped("issuer.signature", "needs issuer.keys")(t, env, results)
			}
		})
	}
}
