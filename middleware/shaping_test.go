package middleware_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/tiptest"
)

// A tenant's hook shapes each user's session: tags and source identity on
// the session STS issues, at the exchange and on the renewal half an hour
// later; a user the hook refuses is answered 403 access_denied without
// any AWS call, and the hook's error is logged, not answered.
func TestSessionShapingThroughMiddleware(t *testing.T) {
	env := tiptest.New(t)
	var logs bytes.Buffer
	m := newMiddleware(t, env, func(o *middleware.Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		o.Exchange.Session = func(claims map[string]any) (exchange.SessionOptions, error) {
			if claims["tenant"] != "a" {
				return exchange.SessionOptions{}, errors.New("not a member of tenant a")
			}
			sub, _ := claims["sub"].(string)
			return exchange.SessionOptions{
				Tags:           map[string]string{"qbusiness-dataaccessor:ExternalId": "tenant-a-external-id", "user": sub},
				SourceIdentity: sub,
			}, nil
		}
	})
	h := m.Handler(whoAmI(env))

	w := get(t, h, env.IdP.Token("bob"))
	var body struct{ Error, ErrorDescription string }
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	if w.Code != http.StatusForbidden || body.Error != "access_denied" || strings.Contains(w.Body.String(), "tenant a") {
		t.Fatalf("bob: %d %s", w.Code, w.Body.String())
	}
	if n := env.AWS.CallCounts(); len(n) != 0 {
		t.Fatalf("AWS calls for a user the hook refused: %v", n)
	}
	if !strings.Contains(logs.String(), `session_error="not a member of tenant a"`) {
		t.Fatalf("the hook's error is not logged:\n%s", logs.String())
	}

	tok := env.IdP.Token("alice", tiptest.WithClaims(map[string]any{"tenant": "a"}))
	first := shapedKey(t, env, h, tok)
	env.Clock.Advance(30 * time.Minute) // past the credentials' 15 minutes, within the identity context's hour
	renewed := shapedKey(t, env, h, tok)
	if renewed == first {
		t.Fatal("the credentials were not renewed")
	}
	if n := env.AWS.Calls("CreateTokenWithIAM"); n != 1 {
		t.Fatalf("CreateTokenWithIAM called %d times, want 1: the renewal reuses the identity context", n)
	}
}

// shapedKey serves a request of alice with tok and checks the session of
// the credentials the handler used; it returns their access key.
func shapedKey(t *testing.T, env *tiptest.Env, h http.Handler, tok string) string {
	t.Helper()
	w := get(t, h, tok)
	var got map[string]string
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &got) != nil {
		t.Fatalf("alice: %d %s", w.Code, w.Body.String())
	}
	info, ok := env.AWS.Session(got["key"])
	if !ok || info.User != "alice" || info.SourceIdentity != "alice" ||
		info.Tags["qbusiness-dataaccessor:ExternalId"] != "tenant-a-external-id" || info.Tags["user"] != "alice" {
		t.Fatalf("alice's session carries %+v", info)
	}
	return got["key"]
}

// Options STS would refuse are the operator's mistake: 500, without any
// AWS call, and neither the answer nor the log shows the value.
func TestSessionShapingInvalidOptionsThroughMiddleware(t *testing.T) {
	env := tiptest.New(t)
	var logs bytes.Buffer
	m := newMiddleware(t, env, func(o *middleware.Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		o.Exchange.Session = func(claims map[string]any) (exchange.SessionOptions, error) {
			name, _ := claims["name"].(string)
			return exchange.SessionOptions{SourceIdentity: name + " (from a claim)"}, nil // a space: refused
		}
	})
	w := get(t, m.Handler(whoAmI(env)), env.IdP.Token("alice"))
	if w.Code != http.StatusInternalServerError || strings.Contains(w.Body.String(), "from a claim") {
		t.Fatalf("alice: %d %s", w.Code, w.Body.String())
	}
	if n := env.AWS.CallCounts(); len(n) != 0 {
		t.Fatalf("AWS calls: %v", n)
	}
	if !strings.Contains(logs.String(), "SessionOptions.SourceIdentity") || strings.Contains(logs.String(), "from a claim") {
		t.Fatalf("logs:\n%s", logs.String())
	}
}
