package echotip_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/labstack/echo/v4"

	"github.com/tipkit/tipkit/adapters/echotip"
	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/tiptest"
)

func ExampleNew() {
	// A local identity provider and a local IAM Identity Center and STS
	// stand in for the real ones.
	env, err := tiptest.NewEnv()
	if err != nil {
		panic(err)
	}
	defer env.Close()
	base := env.Config() // region and endpoint of the local AWS
	base.Credentials = nil

	m, err := middleware.New(context.Background(), middleware.Options{
		Issuer:   env.IdP.Issuer(),
		Audience: []string{env.IdP.Audience()},
		Exchange: exchange.Options{
			ApplicationArn:     env.ApplicationArn,
			AccessRoleArn:      env.AccessRoleArn,
			ApplicationRoleArn: env.ApplicationRoleArn,
			Config:             base,
		},
		AWSConfig: base,
		Realm:     "example",
	})
	if err != nil {
		panic(err)
	}
	defer m.Close()

	e := echo.New()
	e.Use(echotip.New(m))
	e.GET("/whoami", func(c echo.Context) error {
		cfg, ok := echotip.Config(c)
		if !ok {
			return echo.ErrInternalServerError
		}
		id, _ := echotip.Identity(c)
		// Any AWS client built from cfg acts as the caller.
		out, err := sts.NewFromConfig(cfg).GetCallerIdentity(c.Request().Context(), &sts.GetCallerIdentityInput{})
		if err != nil {
			return echo.ErrBadGateway
		}
		return c.String(http.StatusOK, id.Subject()+" acts in account "+aws.ToString(out.Account))
	})

	for _, token := range []string{env.IdP.Token("alice"), ""} {
		req := httptest.NewRequest(http.MethodGet, "/whoami", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		e.ServeHTTP(w, req)
		fmt.Println(w.Code, strings.TrimSpace(w.Body.String()))
		if challenge := w.Header().Get("WWW-Authenticate"); challenge != "" {
			fmt.Println(challenge)
		}
	}
	// Output:
	// 200 alice acts in account 123456789012
	// 401 {"error":"missing_token","error_description":"a bearer token is required"}
	// Bearer realm="example"
}

func ExampleNewWithConfig() {
	env, err := tiptest.NewEnv()
	if err != nil {
		panic(err)
	}
	defer env.Close()
	base := env.Config()
	base.Credentials = nil
	m, err := middleware.New(context.Background(), middleware.Options{
		Issuer:   env.IdP.Issuer(),
		Audience: []string{env.IdP.Audience()},
		Exchange: exchange.Options{
			ApplicationArn:     env.ApplicationArn,
			AccessRoleArn:      env.AccessRoleArn,
			ApplicationRoleArn: env.ApplicationRoleArn,
			Config:             base,
		},
		AWSConfig: base,
	})
	if err != nil {
		panic(err)
	}
	defer m.Close()

	e := echo.New()
	// The health check goes through without a token.
	e.Use(echotip.NewWithConfig(m, echotip.MiddlewareConfig{
		Skipper: func(c echo.Context) bool { return c.Path() == "/healthz" },
	}))
	e.GET("/healthz", func(c echo.Context) error {
		_, signedIn := echotip.Config(c)
		return c.String(http.StatusOK, fmt.Sprint("ok, signed in: ", signedIn))
	})
	e.GET("/data", func(c echo.Context) error { return c.String(http.StatusOK, "data") })

	for _, path := range []string{"/healthz", "/data"} {
		w := httptest.NewRecorder()
		e.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		fmt.Println(path, w.Code, w.Body.String())
	}
	// Output:
	// /healthz 200 ok, signed in: false
	// /data 401 {"error":"missing_token","error_description":"a bearer token is required"}
}
