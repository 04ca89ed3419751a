// Package middleware is tipkit's net/http middleware: it verifies each
// request's OpenID Connect bearer token, trades it once per user for
// identity-enhanced AWS credentials through IAM Identity Center's trusted
// identity propagation, and puts a ready aws.Config into the request
// context, where handlers read it with ctxcreds.Config.
//
//	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1")) // IAM Identity Center's region
//	if err != nil {
//		return err
//	}
//	mw, err := middleware.New(ctx, middleware.Options{
//		Issuer:   "https://idp.example.com", // the exact iss of the tokens
//		Audience: []string{"my-api"},
//		Exchange: exchange.Options{
//			ApplicationArn:     "arn:aws:sso::111122223333:application/ssoins-1111222233334444/apl-1111222233334444",
//			AccessRoleArn:      "arn:aws:iam::111122223333:role/UserAccess",
//			ApplicationRoleArn: "arn:aws:iam::111122223333:role/TokenExchange", // signs the exchange
//			Config:             cfg, // the exchange's own clients
//		},
//		AWSConfig: cfg,            // the base of each user's aws.Config
//		Logger:    slog.Default(), // each refusal with its AWS error code (aws_code)
//	})
//	if err != nil {
//		return err
//	}
//	defer mw.Close()
//	http.Handle("GET /whoami", mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
//		userCfg, _ := ctxcreds.Config(r.Context())
//		out, err := sts.NewFromConfig(userCfg).GetCallerIdentity(r.Context(), &sts.GetCallerIdentityInput{})
//		if err != nil {
//			http.Error(w, "AWS refused", http.StatusBadGateway)
//			return
//		}
//		fmt.Fprintln(w, aws.ToString(out.Arn)) // the access role's session of this user
//	})))
//
// An identity-enhanced session may call only what AWS's managed policy
// AWSIAMIdentityCenterAllowListForIdentityContext lists (S3 Access Grants'
// GetDataAccess, Amazon Q Business's ChatSync, Athena, Lake Formation...),
// whatever the access role allows; STS GetCallerIdentity works with any
// credentials. Without ApplicationRoleArn, Exchange.SSOOIDCClient and
// Exchange.STSClient sign the exchange with the server's own credentials.
// Tests wire the middleware to package tiptest with package middlewaretest.
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
// Failures are answered with RFC 6750's challenges: 401 without a token,
// with a bad one (RFC 6750's invalid_token, also when the user must bring
// a fresh token) or with a malformed request (RFC 6750's invalid_request:
// two Authorization headers, a token in the query string, ...); 403 when
// AWS refuses the user and 503 with Retry-After when AWS or the identity
// provider is unavailable, with RFC 6749's codes access_denied and
// temporarily_unavailable; 500 (server_error) for a configuration error
// found at run time; see [ErrorKind]. Every answer can be replaced
// through Options.ErrorHandler, and Options.Logger records the AWS error
// code behind each refusal.
//
// One server serves several customers, each with its own identity
// provider and IAM Identity Center instance, with Options.Tenants: a
// token's iss picks its [Tenant], whose exchange and Cache serve it, and
// handlers read the tenant's name with ctxcreds.Identity.Tenant.
//
// Without a Store (Options.Cache.Store), the memory of exchanged tokens
// and sessions is per process: behind several replicas, or after a
// restart, a token exchanged elsewhere is refused by IAM Identity Center
// and answered 403; that token is answered from memory for
// Options.Cache.RefusedTTL, while a fresh token of the user is tried at
// once. With a Store shared by every replica (the redisstore package, on
// Redis), any replica serves any user, each token is exchanged once for
// the fleet, and a restarted replica finds its users' sessions.
package middleware
