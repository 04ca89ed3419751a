// Package middleware is tipkit's net/http middleware: it verifies each
// request's OpenID Connect bearer token, trades it once per user for
// identity-enhanced AWS credentials through IAM Identity Center's trusted
// identity propagation, and puts a ready aws.Config into the request
// context, where handlers read it with ctxcreds.Config.
//
//	mw, err := middleware.New(ctx, middleware.Options{
//		Issuer:   "https://idp.example.com",
//		Audience: []string{"my-api"},
//		Exchange: exchange.Options{
//			ApplicationArn:     "arn:aws:sso::111122223333:application/ssoins-.../apl-...",
//			AccessRoleArn:      "arn:aws:iam::111122223333:role/UserAccess",
//			ApplicationRoleArn: "arn:aws:iam::111122223333:role/TokenExchange",
//			Config:             aws.Config{Region: "us-east-1"},
//		},
//		AWSConfig: aws.Config{Region: "us-east-1"},
//	})
//	...
//	http.Handle("/files", mw.Handler(filesHandler))
//
// On the hot path (a token seen before, the user's credentials cached) a
// request costs a map lookup for the token, one for the user, and the
// request context; no signature check and no AWS call. Failures are
// answered as RFC 6750 and DESIGN.md say: 401 without or with a bad token,
// 403 when AWS refuses the user, 503 with Retry-After when AWS or the
// identity provider is unavailable, 500 for a configuration error found at
// run time; every answer can be replaced through Options.ErrorHandler.
package middleware
