package middleware_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/tipkit/tipkit/ctxcreds"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/middleware/middlewaretest"
	"github.com/tipkit/tipkit/tiptest"
)

// newMiddleware returns a Middleware over env using the application role,
// with the clocks of env.
func newMiddleware(t testing.TB, env *tiptest.Env, edit ...func(*middleware.Options)) *middleware.Middleware {
	t.Helper()
	return middlewaretest.New(t, env, edit...)
}

// whoAmI is a handler that calls STS GetCallerIdentity as the caller and
// answers with the access key it used and when its credentials expire.
func whoAmI(env *tiptest.Env) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cfg, ok := ctxcreds.Config(r.Context())
		if !ok {
			http.Error(w, "no config", http.StatusInternalServerError)
			return
		}
		id, _ := ctxcreds.IdentityFrom(r.Context())
		creds, err := cfg.Credentials.Retrieve(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if _, err := sts.NewFromConfig(cfg).GetCallerIdentity(r.Context(), &sts.GetCallerIdentityInput{}); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"key": creds.AccessKeyID, "sub": id.Subject(), "expires": creds.Expires.Format(time.RFC3339Nano)})
	})
}

func get(t testing.TB, h http.Handler, token string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHerdThroughMiddleware(t *testing.T) {
	env := tiptest.New(t)
	m := newMiddleware(t, env)
	h := m.Handler(whoAmI(env))
	const users, perUser = 100, 10
	tokens := make([]string, users)
	for i := range tokens {
		tokens[i] = env.IdP.Token(fmt.Sprintf("user%03d", i))
	}
	var wg sync.WaitGroup
	var wrong atomic.Int32
	for i := range users * perUser {
		u := i % users
		wg.Go(func() {
			w := get(t, h, tokens[u])
			if w.Code != http.StatusOK {
				t.Errorf("status %d: %s", w.Code, w.Body.String())
				return
			}
			var body map[string]string
			_ = json.Unmarshal(w.Body.Bytes(), &body)
			if owner, _ := env.AWS.UserFor(body["key"]); owner != fmt.Sprintf("user%03d", u) || body["sub"] != owner {
				wrong.Add(1)
			}
		})
	}
	wg.Wait()
	if wrong.Load() != 0 {
		t.Fatalf("%d requests saw another user's credentials", wrong.Load())
	}
	if c, a := env.AWS.Calls("CreateTokenWithIAM"), env.AWS.Calls("AssumeRole"); c != users || a != users {
		t.Fatalf("%d CreateTokenWithIAM and %d AssumeRole calls for %d users", c, a, users)
	}
	st := m.Stats()
	if st.Requests != users*perUser || st.Exchanges != users || st.Users != users {
		t.Fatalf("stats %+v", st)
	}
}

func TestHotPathAllocations(t *testing.T) {
	env := tiptest.New(t)
	m := newMiddleware(t, env)
	h := m.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	tok := env.IdP.Token("alice")
	if w := get(t, h, tok); w.Code != http.StatusOK {
		t.Fatalf("first request: %d %s", w.Code, w.Body.String())
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	w := httptest.NewRecorder()
	bare := testing.AllocsPerRun(200, func() { http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}).ServeHTTP(w, r) })
	n := testing.AllocsPerRun(200, func() { h.ServeHTTP(w, r) })
	if n-bare > 3 {
		t.Fatalf("hot path allocates %v times per request (bare handler %v)", n, bare)
	}
	_ = aws.Config{}
	_ = time.Second
}
