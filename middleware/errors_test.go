package middleware

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tipkit/tipkit/exchange"
)

// answer runs DefaultErrorHandler(realm) on err and returns the recording.
func answer(realm string, err *Error) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	DefaultErrorHandler(realm)(w, httptest.NewRequest(http.MethodGet, "/", nil), err)
	return w
}

func TestDefaultErrorHandler(t *testing.T) {
	cases := []struct {
		name      string
		err       *Error
		status    int
		challenge string
		retry     string
		body      string
	}{
		{"no token", newError(KindNoToken, "the request carries no bearer token", nil), 401,
			`Bearer realm="api"`, "",
			`{"error":"missing_token","error_description":"the request carries no bearer token"}`},
		{"invalid request", newError(KindInvalidRequest, "bad", nil), 401,
			`Bearer realm="api", error="invalid_request", error_description="bad"`, "",
			`{"error":"invalid_request","error_description":"bad"}`},
		{"invalid token", newError(KindInvalidToken, "the token has expired", nil), 401,
			`Bearer realm="api", error="invalid_token", error_description="the token has expired"`, "",
			`{"error":"invalid_token","error_description":"the token has expired"}`},
		{"forbidden", newError(KindForbidden, "no", nil), 403,
			`Bearer realm="api", error="access_denied", error_description="no"`, "",
			`{"error":"access_denied","error_description":"no"}`},
		{"unavailable", &Error{Kind: KindUnavailable, Code: "temporarily_unavailable", RetryAfter: 1500 * time.Millisecond}, 503,
			"", "2", `{"error":"temporarily_unavailable"}`},
		{"unavailable, default retry", newError(KindUnavailable, "later", nil), 503,
			"", "5", `{"error":"temporarily_unavailable","error_description":"later"}`},
		{"unavailable, tiny retry", &Error{Kind: KindUnavailable, RetryAfter: time.Nanosecond}, 503,
			"", "1", `{"error":"temporarily_unavailable"}`},
		{"internal", newError(KindInternal, "", nil), 500, "", "", `{"error":"server_error"}`},
		{"nil", nil, 500, "", "", `{"error":"server_error"}`},
		{"unknown kind", &Error{Kind: 99}, 500, "", "", `{"error":"server_error"}`},
		{"unsafe values", &Error{Kind: KindInvalidToken, Code: "in\"valid\\", Description: "a \"quote\"\r\nSet-Cookie: x=1 é\x00"}, 401,
			`Bearer realm="api", error="invalid", error_description="a quoteSet-Cookie: x=1 "`, "",
			`{"error":"invalid","error_description":"a quoteSet-Cookie: x=1 "}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := answer("api", tc.err)
			h := w.Header()
			if w.Code != tc.status || h.Get("WWW-Authenticate") != tc.challenge || h.Get("Retry-After") != tc.retry {
				t.Fatalf("got %d, WWW-Authenticate %q, Retry-After %q; want %d, %q, %q",
					w.Code, h.Get("WWW-Authenticate"), h.Get("Retry-After"), tc.status, tc.challenge, tc.retry)
			}
			if h.Get("Content-Type") != "application/json" || h.Get("Cache-Control") != "no-store" {
				t.Fatalf("headers = %v", h)
			}
			if w.Body.String() != tc.body {
				t.Fatalf("body = %s, want %s", w.Body, tc.body)
			}
			if !json.Valid(w.Body.Bytes()) {
				t.Fatal("body is not JSON")
			}
		})
	}
}

func TestDefaultErrorHandlerRealm(t *testing.T) {
	for realm, want := range map[string]string{
		"":               `Bearer`,
		`my "api"\`:      `Bearer realm="my api"`,
		"caf\u00e9\r\nX": `Bearer realm="cafX"`,
	} {
		if got := answer(realm, newError(KindNoToken, "", nil)).Header().Get("WWW-Authenticate"); got != want {
			t.Errorf("realm %q: WWW-Authenticate %q, want %q", realm, got, want)
		}
	}
	if got := answer("", newError(KindInvalidToken, "", nil)).Header().Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
		t.Errorf("no realm: %q", got)
	}
}

func TestErrorFromExchange(t *testing.T) {
	own := newError(KindInvalidToken, "mine", nil)
	xerr := func(sentinel error) error { return fmt.Errorf("AssumeRole: %w", sentinel) }
	cases := []struct {
		name string
		err  error
		kind ErrorKind
		desc string
	}{
		{"refused", xerr(exchange.ErrRefused), KindForbidden, "refused"},
		{"unavailable", fmt.Errorf("wrapped: %w", xerr(exchange.ErrUnavailable)), KindUnavailable, "retry later"},
		{"reauthenticate", xerr(exchange.ErrReauthenticate), KindInvalidToken, "obtain a fresh token"},
		{"config", xerr(exchange.ErrConfig), KindInternal, ""},
		{"config sentinel", exchange.ErrConfig, KindInternal, ""},
		{"deadline", context.DeadlineExceeded, KindUnavailable, "retry later"},
		{"canceled", fmt.Errorf("x: %w", context.Canceled), KindUnavailable, "retry later"},
		{"other", errors.New("boom"), KindInternal, ""},
		{"already an answer", fmt.Errorf("x: %w", own), KindInvalidToken, "mine"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := errorFromExchange(tc.err)
			if e.Kind != tc.kind || tc.desc != "" && !strings.Contains(e.Description, tc.desc) || e.Code != e.Kind.code() {
				t.Fatalf("got %+v, want kind %v with %q", e, tc.kind, tc.desc)
			}
			if e != own && !errors.Is(e, tc.err) {
				t.Fatal("the exchange error is not wrapped")
			}
		})
	}
	if errorFromExchange(nil) != nil {
		t.Fatal("nil error gives an answer")
	}
}

func TestErrorKinds(t *testing.T) {
	for k, want := range map[ErrorKind]string{
		KindNoToken: "no_token 401", KindInvalidRequest: "invalid_request 401", KindInvalidToken: "invalid_token 401",
		KindForbidden: "forbidden 403", KindUnavailable: "unavailable 503", KindInternal: "internal 500", 0: "unknown 500",
	} {
		if got := fmt.Sprint(k, " ", k.Status()); got != want {
			t.Errorf("kind %d: %q, want %q", int(k), got, want)
		}
	}
	e := &Error{Kind: KindInvalidToken, Description: "the token has expired", Err: errors.New("cause")}
	if e.Error() != "middleware: invalid_token: the token has expired" || errors.Unwrap(e).Error() != "cause" {
		t.Fatalf("Error() = %q", e.Error())
	}
}
