package benchmarks

import (
	"flag"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	jwtmiddleware "github.com/auth0/go-jwt-middleware/v2"
	"github.com/auth0/go-jwt-middleware/v2/jwks"
	"github.com/auth0/go-jwt-middleware/v2/validator"
	"github.com/gin-gonic/gin"
	"github.com/labstack/echo/v4"

	"github.com/tipkit/tipkit/adapters/echotip"
	"github.com/tipkit/tipkit/adapters/gintip"
	"github.com/tipkit/tipkit/benchmarks/internal/fixture"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/tiptest"
)

// The one tiptest environment of the package, started at first use and
// closed by TestMain.
var (
	envOnce sync.Once
	env     *tiptest.Env
	envErr  error
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.ReleaseMode)
	// The references are measured before any benchmark runs: testing.Benchmark
	// cannot run inside a benchmark, which holds the benchmarks' lock.
	flag.Parse()
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" {
		references()
	}
	code := m.Run()
	if env != nil {
		_ = env.Close()
	}
	closeFleet()
	os.Exit(code)
}

// theEnv returns the package's tiptest environment.
func theEnv(tb testing.TB) *tiptest.Env {
	tb.Helper()
	envOnce.Do(func() { env, envErr = tiptest.NewEnv() })
	if envErr != nil {
		tb.Fatalf("tiptest.NewEnv: %v", envErr)
	}
	return env
}

// sink is the cheapest http.ResponseWriter: it keeps the status only.
type sink struct {
	h    http.Header
	code int
}

func newSink() *sink                { return &sink{h: make(http.Header)} }
func (s *sink) Header() http.Header { return s.h }
func (s *sink) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
}
func (s *sink) Write(p []byte) (int, error) {
	s.WriteHeader(http.StatusOK)
	return len(p), nil
}

// bareHandler is the handler every benchmark ends in: it answers 204.
var bareHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusNoContent)
})

// request returns a GET / carrying token as a bearer token.
func request(token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

// frameworks are the routers measured, each as a function wrapping the
// bare handler with an optional tipkit middleware.
var frameworks = []struct {
	name string
	wrap func(m *middleware.Middleware) http.Handler
}{
	{"nethttp", func(m *middleware.Middleware) http.Handler {
		if m == nil {
			return bareHandler
		}
		return m.Handler(bareHandler)
	}},
	{"gin", func(m *middleware.Middleware) http.Handler {
		e := gin.New()
		h := func(c *gin.Context) { c.Status(http.StatusNoContent) }
		if m == nil {
			e.GET("/", h)
		} else {
			e.GET("/", gintip.New(m), h)
		}
		return e
	}},
	{"echo", func(m *middleware.Middleware) http.Handler {
		e := echo.New()
		h := func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }
		if m == nil {
			e.GET("/", h)
		} else {
			e.GET("/", h, echotip.New(m))
		}
		return e
	}},
}

// hot is the hot-path fixture: a middleware that has seen alice's token
// and holds her credentials.
var (
	hotOnce sync.Once
	hotMW   *middleware.Middleware
	hotTok  string
	hotErr  error
)

func hotPath(tb testing.TB) (*middleware.Middleware, string) {
	tb.Helper()
	e := theEnv(tb)
	hotOnce.Do(func() {
		hotMW, hotErr = fixture.New(e, nil)
		if hotErr != nil {
			return
		}
		hotTok = e.IdP.Token("alice")
		hotErr = expect(hotMW.Handler(bareHandler), request(hotTok))
	})
	if hotErr != nil {
		tb.Fatal(hotErr)
	}
	return hotMW, hotTok
}

// expect serves r once through h and reports an answer other than 204.
func expect(h http.Handler, r *http.Request) error {
	w := newSink()
	h.ServeHTTP(w, r)
	if w.code != http.StatusNoContent {
		return &statusError{w.code}
	}
	return nil
}

type statusError struct{ code int }

func (e *statusError) Error() string { return "answered " + http.StatusText(e.code) }

// serve runs b.N requests r through h and fails b on an answer other than
// 204. The caller has reset the timer.
func serve(b *testing.B, h http.Handler, r *http.Request) {
	w := newSink()
	for range b.N {
		w.code = 0
		h.ServeHTTP(w, r)
		if w.code != http.StatusNoContent {
			b.Fatalf("answered %d", w.code)
		}
	}
}

// auth0Handler returns the bare handler behind auth0/go-jwt-middleware v2
// checking RS256 tokens of e's IdP, with a JWKS provider that caches the
// key set (fetched through OIDC discovery, as its documentation does).
func auth0Handler(tb testing.TB, e *tiptest.Env) http.Handler {
	tb.Helper()
	issuer, err := url.Parse(e.IdP.Issuer())
	if err != nil {
		tb.Fatal(err)
	}
	provider := jwks.NewCachingProvider(issuer, 5*time.Minute)
	v, err := validator.New(provider.KeyFunc, validator.RS256, e.IdP.Issuer(), []string{e.IdP.Audience()})
	if err != nil {
		tb.Fatal(err)
	}
	return jwtmiddleware.New(v.ValidateToken).CheckJWT(bareHandler)
}

// cost is what one operation of a benchmark costs.
type cost struct{ ns, allocs float64 }

// measure runs f as a benchmark of its own (testing.Benchmark) and returns
// its cost per operation.
func measure(f func(b *testing.B)) cost {
	r := testing.Benchmark(f)
	if r.N == 0 {
		return cost{}
	}
	return cost{float64(r.T.Nanoseconds()) / float64(r.N), float64(r.MemAllocs) / float64(r.N)}
}

// references are the costs every benchmark compares itself to, measured
// once per run, in this same process, before the benchmarks (see TestMain).
var (
	refOnce sync.Once
	refs    struct {
		bare  map[string]cost // by framework
		auth0 cost
		raw   map[string]cost // by algorithm
	}
)

func references() {
	refOnce.Do(func() {
		refs.bare = map[string]cost{}
		for _, f := range frameworks {
			h := f.wrap(nil)
			refs.bare[f.name] = measure(func(b *testing.B) { benchBare(b, h) })
		}
		refs.auth0 = measure(func(b *testing.B) { benchAuth0(b) })
		refs.raw = map[string]cost{}
		for _, alg := range algs {
			refs.raw[alg] = measure(func(b *testing.B) { benchRaw(b, alg) })
		}
	})
}

// timed runs loop between a reset and a stop of b's timer and returns its
// cost per operation, counting allocations itself so that the ratios
// below can use them.
func timed(b *testing.B, loop func()) cost {
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	loop()
	b.StopTimer()
	runtime.ReadMemStats(&after)
	return cost{
		ns:     float64(b.Elapsed().Nanoseconds()) / float64(b.N),
		allocs: float64(after.Mallocs-before.Mallocs) / float64(b.N),
	}
}

// reportVsBare reports c against framework's bare handler and against
// auth0's validation.
func reportVsBare(b *testing.B, c cost, framework string) {
	bare := refs.bare[framework]
	if bare.ns > 0 {
		b.ReportMetric(c.ns/bare.ns, "x-bare")
		b.ReportMetric(c.ns-bare.ns, "ns-over-bare")
		b.ReportMetric(c.allocs-bare.allocs, "allocs-over-bare")
	}
	reportVsAuth0(b, c)
}

func reportVsAuth0(b *testing.B, c cost) {
	if refs.auth0.ns > 0 {
		b.ReportMetric(c.ns/refs.auth0.ns, "x-auth0")
	}
}

// TestFixtures checks that every benchmark's setup answers as it should, so
// that `go test` catches a broken benchmark without timing anything.
func TestFixtures(t *testing.T) {
	e := theEnv(t)
	m, tok := hotPath(t)
	for _, f := range frameworks {
		if err := expect(f.wrap(nil), request(tok)); err != nil {
			t.Errorf("bare %s: %v", f.name, err)
		}
		if err := expect(f.wrap(m), request(tok)); err != nil {
			t.Errorf("tipkit %s: %v", f.name, err)
		}
		if err := expect(f.wrap(m), request("")); err == nil {
			t.Errorf("tipkit %s let a request without a token through", f.name)
		}
	}
	if err := expect(auth0Handler(t, e), request(tok)); err != nil {
		t.Errorf("auth0: %v", err)
	}
	if err := expect(auth0Handler(t, e), request(tok+"x")); err == nil {
		t.Error("auth0 accepted a bad signature")
	}
}
