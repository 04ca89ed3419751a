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
// Every request's token is verified before the handler runs, except for
// requests passed through untouched, which reach it with no aws.Config:
// CORS preflights (unless Options.AuthenticatePreflight is set), requests
// Options.Skipper selects, and, with Options.Optional, requests carrying no
// token.
//
// On the hot path (a token seen before, the user's credentials cached) a
// request costs a map lookup for the token, one for the user, and a copy
// of the request with one context value; no signature check and no AWS
// call. With the default extractor, a remembered token's bytes are not
// scanned again.
//
// Failures are answered with RFC 6750's challenges and codes: 401 without
// a token, with a bad one (invalid_token, also when the user must bring a
// fresh token) or with a malformed request (invalid_request: two
// Authorization headers, a token in the query string, ...), 403 when AWS refuses the user, 503 with
// Retry-After when AWS or the identity provider is unavailable, 500 for a
// configuration error found at run time; see [ErrorKind]. Every answer can
// be replaced through Options.ErrorHandler.
//
// Without Options.Store, the memory of exchanged tokens and sessions is
// per process: behind several replicas, or after a restart, a token
// exchanged elsewhere is refused by IAM Identity Center and answered 403
// for Options.Cache.RefusedTTL. With a Store (Options.Cache.Store) shared by every replica (the
// redisstore package, on Redis), any replica serves any user, each token
// is exchanged once for the fleet, and a restarted replica finds its
// users' sessions.
package middleware
