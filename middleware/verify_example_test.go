package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/tiptest"
)

func ExampleNewVerifier() {
	idp, err := tiptest.NewIdP(tiptest.IdPOptions{})
	if err != nil {
		panic(err)
	}
	defer idp.Close()

	// The key set is found through OpenID Connect discovery at the issuer,
	// on the first token that needs it.
	v, err := middleware.NewVerifier(context.Background(), middleware.VerifierOptions{
		Issuers: []middleware.IssuerConfig{{Issuer: idp.Issuer(), Audience: []string{idp.Audience()}}},
	})
	if err != nil {
		panic(err)
	}
	defer v.Close()

	claims, err := v.Verify(context.Background(), idp.Token("alice"))
	if err != nil {
		panic(err)
	}
	fmt.Println(claims.Subject, claims.Raw["email"])

	_, err = v.Verify(context.Background(), idp.Token("bob", tiptest.WithLifetime(-time.Hour)))
	fmt.Println(err)

	// Answer the failure as RFC 6750 asks.
	var e *middleware.Error
	if errors.As(err, &e) {
		w := httptest.NewRecorder()
		middleware.DefaultErrorHandler("example")(w, httptest.NewRequest("GET", "/", nil), e)
		fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))
		fmt.Println(w.Body)
	}
	// Output:
	// alice alice@example.com
	// middleware: invalid_token: the token has expired
	// 401 Bearer realm="example", error="invalid_token", error_description="the token has expired"
	// {"error":"invalid_token","error_description":"the token has expired"}
}
