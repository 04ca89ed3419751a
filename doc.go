// Package tipkit lets a Go server call AWS as the user in front of it.
//
// Each request carries the user's OpenID Connect token from the company's
// identity provider (Okta, Entra ID, Cognito, Keycloak, Auth0...). tipkit
// verifies it, trades it once per user through AWS IAM Identity Center's
// trusted identity propagation (SSO OIDC CreateTokenWithIAM, then STS
// AssumeRole with the user's identity context) for identity-enhanced AWS
// credentials, renews them without spending the token again, and hands the
// handler an aws.Config. Services that understand identity context (S3
// Access Grants, Amazon Q Business, Athena, Lake Formation...) then
// authorise the user, not the server.
//
// This package holds no code: it introduces the module's packages.
//
//   - [github.com/tipkit/tipkit/middleware]: the net/http middleware, and
//     Authorize for any other transport. Start here.
//   - [github.com/tipkit/tipkit/ctxcreds]: the caller's aws.Config and
//     identity in a request's context.
//   - [github.com/tipkit/tipkit/adapters/gintip],
//     [github.com/tipkit/tipkit/adapters/echotip],
//     [github.com/tipkit/tipkit/adapters/grpctip]: the middleware for Gin,
//     Echo and gRPC servers.
//   - [github.com/tipkit/tipkit/exchange]: the exchange and its renewal
//     without HTTP, for many users (Exchanger, Cache) or one (Provider).
//   - [github.com/tipkit/tipkit/verify]: OpenID Connect token verification.
//   - [github.com/tipkit/tipkit/redisstore]: sessions shared by the
//     replicas of a service, on Redis.
//   - [github.com/tipkit/tipkit/tiptest] and
//     [github.com/tipkit/tipkit/middleware/middlewaretest]: a local
//     identity provider, IAM Identity Center and STS for tests, and the
//     middleware wired to them.
//
// A server on AWS, its settings in the environment (cmd/tipdoctor checks
// them, and docs/setup-aws.sh in the repository creates what they name):
//
//	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(os.Getenv("AWS_REGION"))) // IAM Identity Center's region
//	if err != nil {
//		return err
//	}
//	mw, err := middleware.New(ctx, middleware.Options{
//		Issuer:   os.Getenv("TIPKIT_ISSUER"), // the exact iss of the users' tokens
//		Audience: []string{os.Getenv("TIPKIT_AUDIENCE")},
//		Exchange: exchange.Options{
//			ApplicationArn:     os.Getenv("TIPKIT_APPLICATION_ARN"),
//			AccessRoleArn:      os.Getenv("TIPKIT_ACCESS_ROLE_ARN"),
//			ApplicationRoleArn: os.Getenv("TIPKIT_APPLICATION_ROLE_ARN"), // assumed with the users' tokens to sign the exchange
//			Config:             cfg,
//		},
//		AWSConfig: cfg, // the base of each user's aws.Config
//		Logger:    slog.Default(),
//	})
//	if err != nil {
//		return err
//	}
//	defer mw.Close()
//	http.Handle("GET /whoami", mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
//		userCfg, _ := ctxcreds.Config(r.Context()) // the caller's identity-enhanced configuration
//		out, err := sts.NewFromConfig(userCfg).GetCallerIdentity(r.Context(), &sts.GetCallerIdentityInput{})
//		if err != nil {
//			http.Error(w, "AWS refused", http.StatusBadGateway)
//			return
//		}
//		fmt.Fprintln(w, aws.ToString(out.Arn)) // the access role's session of this user
//	})))
//
// An identity-enhanced session may call only the actions of AWS's managed
// policy AWSIAMIdentityCenterAllowListForIdentityContext, whatever its role
// allows: S3 itself is reached through S3 Access Grants (s3control
// GetDataAccess with the caller's configuration), Amazon Q Business with
// ChatSync; STS GetCallerIdentity works with any credentials. The README
// holds a complete main, the setup on AWS, testing with tiptest, and a
// troubleshooting table keyed on the AWS error codes the middleware logs.
package tipkit
