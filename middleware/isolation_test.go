package middleware_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/tipkit/tipkit/ctxcreds"
	"github.com/tipkit/tipkit/tiptest"
)

// The identity a handler reads is shared by every request of its token.
// A handler that overwrites it with another user's (keeping the expiry
// and Identity Center user, so that it would be served again) changes its
// own copy only: the same user's next request still sees its own subject,
// with its own credentials, and another user is unaffected.
func TestHandlerCannotOverwriteTheCallersIdentity(t *testing.T) {
	env := tiptest.New(t)
	m := newMiddleware(t, env)
	alice, bob := env.IdP.Token("alice"), env.IdP.Token("bob")
	h := m.Handler(whoAmI(env))
	keyOf(t, env, get(t, h, bob), "bob")
	keyOf(t, env, get(t, h, alice), "alice")

	overwrite := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := ctxcreds.IdentityFrom(r.Context())
		id = ctxcreds.NewIdentity(id.Issuer(), "bob", map[string]any{"sub": "bob"}, id.Expires(),
			ctxcreds.AWSUser{UserID: id.AWSUserID(), IdentityStoreID: id.IdentityStoreID()})
		_, _ = w.Write([]byte(id.Subject()))
	}))
	if w := get(t, overwrite, alice); w.Code != http.StatusOK || w.Body.String() != "bob" {
		t.Fatalf("the overwriting handler answered %d %q", w.Code, w.Body.String())
	}

	keyOf(t, env, get(t, h, alice), "alice")
	keyOf(t, env, get(t, h, bob), "bob")
	ids := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := ctxcreds.IdentityFrom(r.Context())
		_ = json.NewEncoder(w).Encode([]string{id.Subject(), id.AWSUserID(), id.StringClaim("sub")})
	}))
	for user, tok := range map[string]string{"alice": alice, "bob": bob} {
		var got []string
		if w := get(t, ids, tok); w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &got) != nil {
			t.Fatalf("%s: %d %s", user, w.Code, w.Body.String())
		}
		if want := []string{user, env.AWS.UserID(user), user}; !slices.Equal(got, want) {
			t.Errorf("%s's identity reads %q, want %q", user, got, want)
		}
	}
}
