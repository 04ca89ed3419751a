package gintip_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tipkit/tipkit/adapters/gintip"
	"github.com/tipkit/tipkit/internal/answertest"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/middleware/middlewaretest"
	"github.com/tipkit/tipkit/tiptest"
)

func init() { gin.SetMode(gin.TestMode) }

func newMiddleware(t *testing.T, env *tiptest.Env) *middleware.Middleware {
	t.Helper()
	return middlewaretest.New(t, env, answertest.WithRealm)
}

func serve(h http.Handler, token string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/api", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestFailureAbortsChain checks that a refused request runs neither the
// middleware nor the handler after gintip, that the chain is marked aborted
// for the middleware before it, and that the answer is the net/http one.
func TestFailureAbortsChain(t *testing.T) {
	env := tiptest.New(t)
	m := newMiddleware(t, env)
	var aborted, later, handler bool
	r := gin.New()
	r.Use(func(c *gin.Context) {
		c.Next()
		aborted = c.IsAborted()
	})
	r.Use(gintip.New(m))
	r.Use(func(c *gin.Context) { later = true })
	r.GET("/api", func(c *gin.Context) { handler = true })

	for _, token := range []string{"", "not-a-jwt", env.IdP.Token("alice", tiptest.WithLifetime(-time.Hour))} {
		aborted, later, handler = false, false, false
		w := serve(r, token)
		ref := serve(m.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { handler = true })), token)
		if w.Code != http.StatusUnauthorized || !aborted || later || handler {
			t.Errorf("token %.10q: status %d, aborted %v, later middleware ran %v, handler ran %v", token, w.Code, aborted, later, handler)
		}
		if w.Body.String() != ref.Body.String() || w.Header().Get("WWW-Authenticate") != ref.Header().Get("WWW-Authenticate") {
			t.Errorf("token %.10q: Gin answered %q %q, net/http %q %q", token,
				w.Header().Get("WWW-Authenticate"), w.Body, ref.Header().Get("WWW-Authenticate"), ref.Body)
		}
	}
}

// TestSuccess checks that the handler and the middleware after gintip see
// the caller's own configuration and identity.
func TestSuccess(t *testing.T) {
	env := tiptest.New(t)
	m := newMiddleware(t, env)
	r := gin.New()
	var later bool
	r.Use(gintip.New(m), func(c *gin.Context) {
		_, later = gintip.Config(c)
	})
	r.GET("/api", func(c *gin.Context) {
		cfg, ok := gintip.Config(c)
		id, idOK := gintip.Identity(c)
		if !ok || !idOK {
			c.String(http.StatusInternalServerError, "config %v, identity %v", ok, idOK)
			return
		}
		creds, err := cfg.Credentials.Retrieve(c.Request.Context())
		if err != nil {
			c.String(http.StatusInternalServerError, "%v", err)
			return
		}
		user, _ := env.AWS.UserFor(creds.AccessKeyID)
		c.JSON(http.StatusOK, map[string]string{"user": user, "sub": id.Subject()})
	})
	for _, u := range []string{"alice", "bob", "alice"} {
		later = false
		w := serve(r, env.IdP.Token(u))
		var body map[string]string
		if err := json.Unmarshal(w.Body.Bytes(), &body); w.Code != http.StatusOK || err != nil {
			t.Fatalf("%s: status %d, body %s", u, w.Code, w.Body)
		}
		if body["user"] != u || body["sub"] != u || !later {
			t.Errorf("%s: handler saw credentials of %q, subject %q; later middleware saw a config: %v", u, body["user"], body["sub"], later)
		}
	}
}

// TestAccessorsWithoutMiddleware checks Config and Identity on contexts
// that carry nothing, including a nil one.
func TestAccessorsWithoutMiddleware(t *testing.T) {
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	for name, ctx := range map[string]*gin.Context{"nil context": nil, "no request": c} {
		if _, ok := gintip.Config(ctx); ok {
			t.Errorf("%s: Config reports a configuration", name)
		}
		if _, ok := gintip.Identity(ctx); ok {
			t.Errorf("%s: Identity reports an identity", name)
		}
	}
	c.Request = httptest.NewRequest(http.MethodGet, "/", nil)
	if _, ok := gintip.Config(c); ok {
		t.Error("Config reports a configuration on a request the middleware did not see")
	}
	if _, ok := gintip.Identity(c); ok {
		t.Error("Identity reports an identity on a request the middleware did not see")
	}
}

func TestNewNil(t *testing.T) {
	defer func() {
		if v := recover(); v == nil || !strings.Contains(fmt.Sprint(v), "nil") {
			t.Fatalf("recovered %v, want a panic naming the nil middleware", v)
		}
	}()
	gintip.New(nil)
}
