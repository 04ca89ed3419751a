// Package exchange trades a user's OpenID Connect token for
// identity-enhanced AWS credentials through IAM Identity Center's trusted
// identity propagation.
//
//	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1")) // IAM Identity Center's region
//	if err != nil {
//		return err
//	}
//	x, err := exchange.New(exchange.Options{
//		ApplicationArn:     "arn:aws:sso::111122223333:application/ssoins-1111222233334444/apl-1111222233334444",
//		AccessRoleArn:      "arn:aws:iam::111122223333:role/UserAccess",
//		ApplicationRoleArn: "arn:aws:iam::111122223333:role/TokenExchange", // assumed with the user's token to sign the exchange
//		Config:             cfg,
//	})
//	if err != nil {
//		return err // matches ErrConfig
//	}
//	session, err := x.Exchange(ctx, userToken) // once per token: IAM Identity Center refuses it afterwards
//	if err != nil {
//		return err
//	}
//	userCfg := cfg.Copy()
//	userCfg.Credentials = credentials.StaticCredentialsProvider{Value: session.Credentials}
//	out, err := sts.NewFromConfig(userCfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}) // as the user
//	// ... before session.Expires(), without the token:
//	session, err = x.Renew(ctx, session, "")
//
// The user's credentials reach what AWS lets identity-enhanced sessions
// call (its managed policy AWSIAMIdentityCenterAllowListForIdentityContext:
// S3 Access Grants' GetDataAccess, Amazon Q Business's ChatSync,
// Athena...), and STS GetCallerIdentity. The middleware package does all
// of this per request, with a [Cache].
//
// One exchange is three calls:
//
//  1. only when an application role is configured, STS
//     AssumeRoleWithWebIdentity (unsigned) gives the credentials that sign the
//     next two calls; they carry no user and are shared by every user;
//  2. SSO OIDC CreateTokenWithIAM with the JWT bearer grant trades the user's
//     token for an Identity Center token and its identity context;
//  3. STS AssumeRole on the access role with that identity context as a
//     provided context gives credentials that AWS services attribute to the
//     user.
//
// IAM Identity Center exchanges a given IdP token (its jti) once and refuses
// it afterwards. An [Exchanger] therefore remembers every token it has sent
// to CreateTokenWithIAM until the token expires (plus 10 minutes; 24 hours
// for a token without exp) and does not send it again; a call AWS
// throttled was not processed, and is retried with the same token. That
// memory is the Exchanger's own: another process (another replica, or this
// one after a restart) sends the token again, and IAM Identity Center
// refuses it with InvalidGrantException, an error matching [ErrRefused]
// that cannot be told from a refused user. A [Cache] with a [Store]
// (CacheOptions.Store; the redisstore package implements it on Redis)
// shares the marks of exchanged tokens and the users' sessions between
// processes: any of them then serves any user, and each token is exchanged
// once for all of them.
//
// An [Exchanger] renews a [Session] without the user's token where it can:
// first by AssumeRole with the identity context it already holds, then
// with the refresh token grant when the application issued one, and only
// then with a newer token of the user. When nothing can renew it, the
// error matches [ErrReauthenticate]: the user must sign in again.
//
// Options.Session shapes each user's session: from the claims of the
// user's token it returns the session tags (attribute-based access
// control; Amazon Q Business data accessors require
// qbusiness-dataaccessor:ExternalId), the source identity and the session
// policies of the AssumeRole that carries the identity context. It is
// called once per exchange; the [Session] keeps its result, so renewals
// shape the session alike without the token.
//
// [Exchanger] serves many users (one call of [Exchanger.Exchange] per user);
// [Provider] is the single-identity form, an aws.CredentialsProvider for
// command-line tools and jobs.
//
// Errors a caller branches on: [ErrRefused] (Identity Center or STS refused
// the user), [ErrUnavailable] (throttling, timeouts, AWS errors: retry later),
// [ErrConfig] (the configuration is wrong) and [ErrReauthenticate]. Error
// messages never contain a token, an identity context or a secret.
package exchange
