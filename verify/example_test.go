package verify_test

import (
	"context"
	"errors"
	"fmt"
	"time"

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

	// The description is fit for the token's bearer (the middleware
	// package answers it as RFC 6750 asks): it never holds the token.
	var ve *verify.Error
	if errors.As(err, &ve) {
		fmt.Println(ve.Description)
	}
	// Output:
	// alice alice@example.com
	// verify: the token has expired
	// true
	// the token has expired
}
