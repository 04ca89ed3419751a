package middleware_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/tiptest"
)

// A token whose claims would tag the shared application role session is
// a setup error: 500 server_error, logged once at error with the code
// that names the cause, and neither the answer nor the log shows the tag
// value or the token. The next user's plain token is served, and that
// user's session carries none of the first user's tags.
func TestApplicationRoleSessionTaggedByTokenThroughMiddleware(t *testing.T) {
	env := tiptest.New(t)
	if err := env.AWS.Configure(func(s *tiptest.Setup) { s.ApplicationRoleTagSession = true }); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	m := newMiddleware(t, env, func(o *middleware.Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	h := m.Handler(whoAmI(env))
	claims := map[string]any{"https://aws.amazon.com/tags": map[string]any{
		"principal_tags":      map[string]any{"clearance": []string{"alice-clearance"}},
		"transitive_tag_keys": []string{"clearance"},
	}}

	tok := env.IdP.Token("alice", tiptest.WithClaims(claims))
	w := get(t, h, tok)
	var body struct{ Error string }
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	if w.Code != http.StatusInternalServerError || body.Error != "server_error" || strings.Contains(w.Body.String(), "alice-clearance") {
		t.Fatalf("alice: %d %s", w.Code, w.Body.String())
	}
	log := logs.String()
	if !strings.Contains(log, "level=ERROR") || !strings.Contains(log, "aws_op=AssumeRoleWithWebIdentity") ||
		!strings.Contains(log, "aws_code=SessionTagsFromToken") {
		t.Fatalf("the refusal is not logged at error with its code:\n%s", log)
	}
	for _, secret := range []string{"alice-clearance", tok} {
		if strings.Contains(log, secret) {
			t.Fatalf("the log shows %q:\n%s", secret, log)
		}
	}
	for _, op := range []string{"CreateTokenWithIAM", "AssumeRole"} {
		if n := env.AWS.Calls(op); n != 0 {
			t.Fatalf("%s called %d times with the refused session", op, n)
		}
	}

	w = get(t, h, env.IdP.Token("bob"))
	var got map[string]string
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &got) != nil {
		t.Fatalf("bob: %d %s", w.Code, w.Body.String())
	}
	if info, ok := env.AWS.Session(got["key"]); !ok || info.User != "bob" || info.Tags != nil {
		t.Fatalf("bob's session carries %+v (known: %v)", info, ok)
	}
}
