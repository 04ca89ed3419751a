package middlewaretest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tipkit/tipkit/ctxcreds"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/middleware/middlewaretest"
	"github.com/tipkit/tipkit/tiptest"
)

// A test of a server behind the middleware, that moves the clock past the
// user's token: the middleware sees the same clock as tiptest, so the
// token has expired for both.
func Example() {
	env, err := tiptest.NewEnv() // in a test: env := tiptest.New(t)
	if err != nil {
		panic(err)
	}
	defer env.Close()
	mw, err := middleware.New(context.Background(), middlewaretest.Options(env)) // in a test: middlewaretest.New(t, env)
	if err != nil {
		panic(err)
	}
	defer mw.Close()
	srv := httptest.NewServer(mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := ctxcreds.IdentityFrom(r.Context())
		fmt.Fprintln(w, "hello", id.Subject())
	})))
	defer srv.Close()

	token := env.IdP.Token("alice", tiptest.WithLifetime(time.Hour))
	get := func() int {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	fmt.Println(get())
	env.Clock.Advance(2 * time.Hour)
	fmt.Println(get())
	// Output:
	// 200
	// 401
}

func TestNew(t *testing.T) {
	env := tiptest.New(t)
	mw := middlewaretest.New(t, env, func(o *middleware.Options) { o.Realm = "test" })
	w := httptest.NewRecorder()
	mw.Handler(http.NotFoundHandler()).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") != `Bearer realm="test"` {
		t.Fatalf("%d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}
