package verify_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/tiptest"
	"github.com/tipkit/tipkit/verify"
)

func ExampleVerifier_Verify() {
	idp, err := tiptest.NewIdP(tiptest.IdPOptions{})
	if err != nil {
		panic(err)
	}
	defer idp.Close()

	// The key set is found through OpenID Connect discovery at the issuer,
	// on the first token that needs it.
	v, err := verify.New(context.Background(), verify.Options{
		Issuers: []verify.Issuer{{Issuer: idp.Issuer(), Audience: []string{idp.Audience()}}},
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

	fmt.Println(errors.Is(err, verify.ErrInvalid))

	// Answer the failure as RFC 6750 asks.
	w := httptest.NewRecorder()
	middleware.DefaultErrorHandler("example")(w, httptest.NewRequest("GET", "/", nil), middleware.ErrorFromVerify(err))
	fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))
	fmt.Println(w.Body)
	// Output:
	// alice alice@example.com
	// verify: the token has expired
	// true
	// 401 Bearer realm="example", error="invalid_token", error_description="the token has expired"
	// {"error":"invalid_token","error_description":"the token has expired"}
}
