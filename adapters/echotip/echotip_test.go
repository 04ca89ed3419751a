package echotip_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	echomw "github.com/labstack/echo/v4/middleware"

	"github.com/tipkit/tipkit/adapters/echotip"
	"github.com/tipkit/tipkit/internal/answertest"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/middleware/middlewaretest"
	"github.com/tipkit/tipkit/tiptest"
)

func newMiddleware(t *testing.T, env *tiptest.Env) *middleware.Middleware {
	t.Helper()
	return middlewaretest.New(t, env, answertest.WithRealm)
}

func serve(h http.Handler, path, token string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestFailureAbortsChain checks that a refused request runs neither the
// middleware nor the handler after echotip, that echotip returns no error
// (so Echo's HTTPErrorHandler writes nothing more), and that the answer is
// the net/http one.
func TestFailureAbortsChain(t *testing.T) {
	env := tiptest.New(t)
	m := newMiddleware(t, env)
	var returned error
	var committed, later, handler, errorHandler bool
	e := echo.New()
	e.HTTPErrorHandler = func(error, echo.Context) { errorHandler = true }
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			returned = next(c)
			committed = c.Response().Committed
			return returned
		}
	})
	e.Use(echotip.New(m))
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error { later = true; return next(c) }
	})
	e.GET("/api", func(echo.Context) error { handler = true; return nil })

	for _, token := range []string{"", "not-a-jwt", env.IdP.Token("alice", tiptest.WithLifetime(-time.Hour))} {
		returned, committed, later, handler, errorHandler = errors.New("not run"), false, false, false, false
		w := serve(e, "/api", token)
		ref := serve(m.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { handler = true })), "/api", token)
		if w.Code != http.StatusUnauthorized || returned != nil || !committed || later || handler || errorHandler {
			t.Errorf("token %.10q: status %d, returned %v, committed %v, later middleware ran %v, handler ran %v, HTTPErrorHandler ran %v",
				token, w.Code, returned, committed, later, handler, errorHandler)
		}
		if w.Body.String() != ref.Body.String() || w.Header().Get("WWW-Authenticate") != ref.Header().Get("WWW-Authenticate") {
			t.Errorf("token %.10q: Echo answered %q %q, net/http %q %q", token,
				w.Header().Get("WWW-Authenticate"), w.Body, ref.Header().Get("WWW-Authenticate"), ref.Body)
		}
	}
}

// TestSuccess checks that the handler and the middleware after echotip see
// the caller's own configuration and identity.
func TestSuccess(t *testing.T) {
	env := tiptest.New(t)
	m := newMiddleware(t, env)
	var later bool
	e := echo.New()
	e.Use(echotip.New(m), func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error { _, later = echotip.Config(c); return next(c) }
	})
	e.GET("/api", func(c echo.Context) error {
		cfg, ok := echotip.Config(c)
		id, idOK := echotip.Identity(c)
		if !ok || !idOK {
			return c.String(http.StatusInternalServerError, fmt.Sprintf("config %v, identity %v", ok, idOK))
		}
		creds, err := cfg.Credentials.Retrieve(c.Request().Context())
		if err != nil {
			return err
		}
		user, _ := env.AWS.UserFor(creds.AccessKeyID)
		return c.JSON(http.StatusOK, map[string]string{"user": user, "sub": id.Subject()})
	})
	for _, u := range []string{"alice", "bob", "alice"} {
		later = false
		w := serve(e, "/api", env.IdP.Token(u))
		var body map[string]string
		if err := json.Unmarshal(w.Body.Bytes(), &body); w.Code != http.StatusOK || err != nil {
			t.Fatalf("%s: status %d, body %s", u, w.Code, w.Body)
		}
		if body["user"] != u || body["sub"] != u || !later {
			t.Errorf("%s: handler saw credentials of %q, subject %q; later middleware saw a config: %v", u, body["user"], body["sub"], later)
		}
	}
}

// TestSkipper checks that a request the Skipper picks reaches the handler
// untouched, without the middleware even seeing it, while the others are
// still authenticated.
func TestSkipper(t *testing.T) {
	env := tiptest.New(t)
	m := newMiddleware(t, env)
	e := echo.New()
	e.Use(echotip.NewWithConfig(m, echotip.MiddlewareConfig{
		Skipper: func(c echo.Context) bool { return c.Path() == "/health" },
	}))
	handler := func(c echo.Context) error {
		_, ok := echotip.Config(c)
		_, idOK := echotip.Identity(c)
		return c.String(http.StatusOK, fmt.Sprint(ok, idOK))
	}
	e.GET("/health", handler)
	e.GET("/api", handler)

	if w := serve(e, "/health", ""); w.Code != http.StatusOK || w.Body.String() != "false false" {
		t.Errorf("skipped request without a token: %d %q, want 200 with no configuration", w.Code, w.Body)
	}
	bad := "not-a-jwt"
	if w := serve(e, "/health", bad); w.Code != http.StatusOK || w.Body.String() != "false false" {
		t.Errorf("skipped request with a bad token: %d %q, want 200 with no configuration", w.Code, w.Body)
	}
	if n := m.Stats().Requests; n != 0 {
		t.Errorf("the middleware saw %d skipped requests", n)
	}
	if w := serve(e, "/api", ""); w.Code != http.StatusUnauthorized {
		t.Errorf("request not skipped, without a token: %d %q, want 401", w.Code, w.Body)
	}
	if w := serve(e, "/api", env.IdP.Token("alice")); w.Code != http.StatusOK || w.Body.String() != "true true" {
		t.Errorf("request not skipped, with a token: %d %q, want 200 with a configuration", w.Code, w.Body)
	}
}

// TestEchoSkippers checks that Echo's own skippers fit MiddlewareConfig.
func TestEchoSkippers(t *testing.T) {
	env := tiptest.New(t)
	m := newMiddleware(t, env)
	for name, skipper := range map[string]echomw.Skipper{"DefaultSkipper": echomw.DefaultSkipper, "nil": nil} {
		e := echo.New()
		e.Use(echotip.NewWithConfig(m, echotip.MiddlewareConfig{Skipper: skipper}))
		e.GET("/api", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
		if w := serve(e, "/api", ""); w.Code != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", name, w.Code)
		}
	}
}

// TestAccessorsWithoutMiddleware checks Config and Identity on contexts
// that carry nothing, including a nil one.
func TestAccessorsWithoutMiddleware(t *testing.T) {
	e := echo.New()
	for name, c := range map[string]echo.Context{
		"nil context": nil,
		"no request":  e.NewContext(nil, nil),
		"plain":       e.NewContext(httptest.NewRequest(http.MethodGet, "/", nil), httptest.NewRecorder()),
	} {
		if _, ok := echotip.Config(c); ok {
			t.Errorf("%s: Config reports a configuration", name)
		}
		if _, ok := echotip.Identity(c); ok {
			t.Errorf("%s: Identity reports an identity", name)
		}
	}
}

func TestNewNil(t *testing.T) {
	for name, mk := range map[string]func(){
		"New":           func() { echotip.New(nil) },
		"NewWithConfig": func() { echotip.NewWithConfig(nil, echotip.MiddlewareConfig{}) },
	} {
		func() {
			defer func() {
				if v := recover(); v == nil || !strings.Contains(fmt.Sprint(v), "nil") {
					t.Errorf("%s: recovered %v, want a panic naming the nil middleware", name, v)
				}
			}()
			mk()
		}()
	}
}
