package middleware_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	smithymiddleware "github.com/aws/smithy-go/middleware"

	"github.com/tipkit/tipkit/ctxcreds"
	"github.com/tipkit/tipkit/middleware"
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

// The base AWSConfig's slices may have spare capacity. Each user's handler
// appends an API option to its configuration: each configuration then
// holds, and an AWS call made with it runs, its own option only.
func TestHandlersAppendToTheirOwnAPIOptions(t *testing.T) {
	env := tiptest.New(t)
	var (
		mu  sync.Mutex
		ran []string // the options run by the latest AWS call
	)
	option := func(name string) func(*smithymiddleware.Stack) error {
		return func(*smithymiddleware.Stack) error {
			mu.Lock()
			defer mu.Unlock()
			ran = append(ran, name)
			return nil
		}
	}
	base := make([]func(*smithymiddleware.Stack) error, 1, 8)
	base[0] = option("base")
	m := newMiddleware(t, env, func(o *middleware.Options) { o.AWSConfig.APIOptions = base })

	configs := map[string]aws.Config{} // the configuration each user's handler built
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cfg, _ := ctxcreds.Config(r.Context())
		id, _ := ctxcreds.IdentityFrom(r.Context())
		cfg.APIOptions = append(cfg.APIOptions, option(id.Subject()))
		configs[id.Subject()] = cfg
	}))
	for _, user := range []string{"alice", "bob"} {
		if w := get(t, h, env.IdP.Token(user)); w.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", user, w.Code, w.Body.String())
		}
	}
	for _, user := range []string{"alice", "bob"} {
		cfg := configs[user]
		if n := len(cfg.APIOptions); n != 2 {
			t.Errorf("%s's configuration holds %d API options, want 2", user, n)
		}
		ran = nil
		if _, err := sts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err != nil {
			t.Fatalf("%s: GetCallerIdentity: %v", user, err)
		}
		if want := []string{"base", user}; !slices.Equal(ran, want) {
			t.Errorf("%s's call ran the API options %q, want %q", user, ran, want)
		}
	}
}
