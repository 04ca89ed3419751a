package gintip_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/gin-gonic/gin"

	"github.com/tipkit/tipkit/adapters/gintip"
	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/tiptest"
)

func ExampleNew() {
	gin.SetMode(gin.TestMode) // no debug lines

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

	r := gin.New()
	r.Use(gintip.New(m))
	r.GET("/whoami", func(c *gin.Context) {
		cfg, ok := gintip.Config(c)
		if !ok {
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		id, _ := gintip.Identity(c)
		// Any AWS client built from cfg acts as the caller.
		out, err := sts.NewFromConfig(cfg).GetCallerIdentity(c.Request.Context(), &sts.GetCallerIdentityInput{})
		if err != nil {
			c.AbortWithStatus(http.StatusBadGateway)
			return
		}
		c.String(http.StatusOK, "%s acts in account %s\n", id.Subject(), aws.ToString(out.Account))
	})

	for _, token := range []string{env.IdP.Token("alice"), ""} {
		req := httptest.NewRequest(http.MethodGet, "/whoami", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
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
