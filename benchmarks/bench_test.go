package benchmarks

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tipkit/tipkit/benchmarks/internal/fixture"
	"github.com/tipkit/tipkit/ctxcreds"
	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/tiptest"
)

// algs are the signature algorithms of the first-sight and raw benchmarks.
var algs = []string{"RS256", "ES256"}

// BenchmarkBare is the baseline: the handler alone, with no
// authentication, under each router.
func BenchmarkBare(b *testing.B) {
	for _, f := range frameworks {
		b.Run(f.name, func(b *testing.B) {
			reportVsBare(b, benchBare(b, f.wrap(nil)), f.name)
		})
	}
}

// benchBare measures h alone. Its requests carry the hot-path token, so
// that they are the same bytes as authenticated ones.
func benchBare(b *testing.B, h http.Handler) cost {
	_, tok := hotPath(b)
	r := request(tok)
	return timed(b, func() { serve(b, h, r) })
}

// BenchmarkHotPath is a request whose token the middleware verified before
// and whose user's credentials it holds: the cost of tipkit on almost
// every request.
func BenchmarkHotPath(b *testing.B) {
	for _, f := range frameworks {
		b.Run(f.name, func(b *testing.B) {
			m, tok := hotPath(b)
			h, r := f.wrap(m), request(tok)
			if err := expect(h, r); err != nil {
				b.Fatal(err)
			}
			c := timed(b, func() { serve(b, h, r) })
			reportVsBare(b, c, f.name)
		})
	}
}

// BenchmarkFirstSight is a request with a token the middleware has never
// seen, of a user whose credentials it holds: a full verification of the
// token (signature, claims) and a credential hit, under net/http.
//
// Tokens are minted before the timer starts. Signing an RS256 token takes
// about a millisecond, so a pool of tokens is minted once and, each time the
// pool is used up, a new middleware (whose first request, untimed, fetches
// the keys and exchanges a token of the same user) takes over: every timed
// request brings a token its middleware has not seen.
func BenchmarkFirstSight(b *testing.B) {
	for _, alg := range algs {
		b.Run(alg, func(b *testing.B) {
			e := theEnv(b)
			pool := firstSightPool(b, alg)
			var (
				m    *middleware.Middleware
				h    http.Handler
				reqs []*http.Request
			)
			fresh := func() {
				if m != nil {
					_ = m.Close()
				}
				var err error
				if m, err = fixture.New(e, nil); err != nil {
					b.Fatal(err)
				}
				h = m.Handler(bareHandler)
				if err := expect(h, request(e.IdP.Token("alice", tiptest.WithAlg(alg)))); err != nil {
					b.Fatal(err)
				}
			}
			reqs = make([]*http.Request, len(pool))
			for i, tok := range pool {
				reqs[i] = request(tok)
			}
			fresh()
			defer func() { _ = m.Close() }()
			w := newSink()
			c := timed(b, func() {
				for i := range b.N {
					j := i % len(reqs)
					if j == 0 && i > 0 {
						b.StopTimer()
						fresh()
						b.StartTimer()
					}
					w.code = 0
					h.ServeHTTP(w, reqs[j])
					if w.code != http.StatusNoContent {
						b.Fatalf("answered %d", w.code)
					}
				}
			})
			st := m.Stats()
			if st.CacheHits != 0 {
				b.Fatalf("%d token cache hits: a first sight was not one", st.CacheHits)
			}
			reportVsBare(b, c, "nethttp")
			if raw := refs.raw[alg]; raw.ns > 0 {
				b.ReportMetric(c.ns/raw.ns, "x-raw")
				b.ReportMetric(1.15*raw.ns+3000-c.ns, "slack-ns")
			}
		})
	}
}

// firstSightPoolSize is the number of tokens minted for first sights.
const firstSightPoolSize = 2048

var (
	poolMu sync.Mutex
	pools  = map[string][]string{}
)

// firstSightPool returns the tokens of alice signed with alg, minted once.
func firstSightPool(b *testing.B, alg string) []string {
	poolMu.Lock()
	defer poolMu.Unlock()
	if p, ok := pools[alg]; ok {
		return p
	}
	e := theEnv(b)
	p := fixture.Mint(e, firstSightPoolSize, alg, func(int) string { return "alice" })
	pools[alg] = p
	return p
}

// BenchmarkRawVerify is one signature check and claims decoding with
// golang-jwt, the key already in hand: the floor of a first sight.
func BenchmarkRawVerify(b *testing.B) {
	for _, alg := range algs {
		b.Run(alg, func(b *testing.B) {
			c := benchRaw(b, alg)
			reportVsAuth0(b, c)
		})
	}
}

// benchRaw measures golang-jwt parsing and verifying a token of alg.
func benchRaw(b *testing.B, alg string) cost {
	e := theEnv(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kf, err := keyfunc.NewDefaultCtx(ctx, []string{e.IdP.JWKSURL()})
	if err != nil {
		b.Fatal(err)
	}
	tok := e.IdP.Token("alice", tiptest.WithAlg(alg))
	var key any
	if _, err := jwt.Parse(tok, func(t *jwt.Token) (any, error) {
		k, err := kf.Keyfunc(t)
		key = k
		return k, err
	}); err != nil {
		b.Fatal(err)
	}
	p := jwt.NewParser(jwt.WithValidMethods([]string{alg}))
	keyOf := func(*jwt.Token) (any, error) { return key, nil }
	return timed(b, func() {
		for range b.N {
			if _, err := p.ParseWithClaims(tok, jwt.MapClaims{}, keyOf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAuth0 is auth0/go-jwt-middleware v2 validating the RS256 token
// of the hot path on every request, with its validator and a caching JWKS
// provider: it verifies the signature each time and gets no AWS
// credentials at all.
func BenchmarkAuth0(b *testing.B) {
	c := benchAuth0(b)
	reportVsBare(b, c, "nethttp")
}

func benchAuth0(b *testing.B) cost {
	e := theEnv(b)
	_, tok := hotPath(b)
	h, r := auth0Handler(b, e), request(tok)
	if err := expect(h, r); err != nil {
		b.Fatal(err)
	}
	return timed(b, func() { serve(b, h, r) })
}

// BenchmarkExchangePerRequest is what a design without a credential cache
// pays: every request trades its token with IAM Identity Center and STS
// (here tiptest over loopback, with no added latency), as a credential
// plugin invoked per request does. Each request needs a new token, since a
// token can be exchanged only once; they are minted before the timer.
func BenchmarkExchangePerRequest(b *testing.B) {
	e := theEnv(b)
	x, err := exchange.New(fixture.ExchangeOptions(e))
	if err != nil {
		b.Fatal(err)
	}
	base := fixture.Options(e).AWSConfig
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		s, err := x.Exchange(r.Context(), tok)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		cfg := base.Copy()
		cfg.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return s.Credentials, nil
		})
		bareHandler.ServeHTTP(w, r.WithContext(ctxcreds.WithConfig(r.Context(), &cfg)))
	})
	// The first exchange also assumes the application role: keep it out.
	if err := expect(h, request(e.IdP.Token("alice"))); err != nil {
		b.Fatal(err)
	}
	toks := fixture.Mint(e, b.N, "RS256", func(int) string { return "alice" })
	reqs := make([]*http.Request, b.N)
	for i, tok := range toks {
		reqs[i] = request(tok)
	}
	calls := fixture.AWSCalls(e)
	w := newSink()
	c := timed(b, func() {
		for _, r := range reqs {
			w.code = 0
			h.ServeHTTP(w, r)
			if w.code != http.StatusNoContent {
				b.Fatalf("answered %d", w.code)
			}
		}
	})
	b.ReportMetric(float64(fixture.AWSCalls(e)-calls)/float64(b.N), "aws-calls/op")
	reportVsBare(b, c, "nethttp")
}
