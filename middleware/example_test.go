package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/tipkit/tipkit/ctxcreds"
	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/tiptest"
)

// A handler behind the middleware calls AWS as the user whose token the
// request carries.
func ExampleNew() {
	env, err := tiptest.NewEnv() // a local IdP, IAM Identity Center and STS
	if err != nil {
		log.Fatal(err)
	}
	defer env.Close()

	cfg := env.Config() // in production: aws.Config{Region: <Identity Center's region>}
	cfg.Credentials = nil
	m, err := middleware.New(context.Background(), middleware.Options{
		Issuer:   env.IdP.Issuer(), // keys found through OIDC discovery
		Audience: []string{env.IdP.Audience()},
		Exchange: exchange.Options{
			ApplicationArn:     env.ApplicationArn,
			AccessRoleArn:      env.AccessRoleArn,
			ApplicationRoleArn: env.ApplicationRoleArn,
			Config:             cfg,
		},
		AWSConfig: cfg,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		userCfg, _ := ctxcreds.Config(r.Context()) // the caller's credentials
		if _, err := sts.NewFromConfig(userCfg).GetCallerIdentity(r.Context(), &sts.GetCallerIdentityInput{}); err != nil {
			http.Error(w, "AWS call failed", http.StatusBadGateway)
			return
		}
		creds, _ := userCfg.Credentials.Retrieve(r.Context())
		user, _ := env.AWS.UserFor(creds.AccessKeyID) // whose identity context the key carries
		fmt.Fprint(w, "credentials of ", user)
	}))

	for _, token := range []string{env.IdP.Token("alice"), ""} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code == http.StatusOK {
			fmt.Println(w.Code, w.Body.String())
		} else {
			fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
	// Output:
	// 200 credentials of alice
	// 401 Bearer
}

// Authorize serves a transport other than net/http: the transport takes
// the bearer token from its own framing (gRPC metadata, a WebSocket
// subprotocol...), and answers the refusal its own way.
func ExampleMiddleware_Authorize() {
	env, err := tiptest.NewEnv()
	if err != nil {
		panic(err)
	}
	defer env.Close()
	mw, err := middleware.New(context.Background(), middleware.Options{
		Issuer:   env.IdP.Issuer(),
		Audience: []string{env.IdP.Audience()},
		Exchange: exchange.Options{
			ApplicationArn: env.ApplicationArn, AccessRoleArn: env.AccessRoleArn,
			ApplicationRoleArn: env.ApplicationRoleArn, Config: env.Config(),
		},
		AWSConfig: env.Config(),
	})
	if err != nil {
		panic(err)
	}
	defer mw.Close()

	ctx, err := mw.Authorize(context.Background(), env.IdP.Token("alice"))
	var refusal *middleware.Error
	if errors.As(err, &refusal) {
		fmt.Println(refusal.Kind.Status(), refusal.Description)
		return
	}
	id, _ := ctxcreds.IdentityFrom(ctx)
	_, hasConfig := ctxcreds.Config(ctx)
	fmt.Println(id.Subject(), hasConfig)

	_, err = mw.Authorize(context.Background(), "not-a-token")
	if errors.As(err, &refusal) {
		fmt.Println(refusal.Kind.Status(), refusal.Code)
	}
	// Output:
	// alice true
	// 401 invalid_token
}
