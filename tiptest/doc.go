// Package tiptest runs, on 127.0.0.1, a local OpenID Connect identity
// provider and a local AWS that speaks the real wire protocols of AWS IAM
// Identity Center (SSO OIDC CreateTokenWithIAM, restJson1) and AWS STS
// (AssumeRoleWithWebIdentity, AssumeRole, GetCallerIdentity, awsQuery), so
// that code using trusted identity propagation can be tested with the
// unmodified aws-sdk-go-v2 clients and no AWS account.
//
// The local services are as strict as the real ones: every signed request
// is checked with SigV4 against the credentials the local AWS issued, the
// identity provider's tokens are verified against its JWKS (found through
// OpenID Connect discovery), a token id (jti) is accepted by
// CreateTokenWithIAM only once, identity contexts are tamper-evident and
// expire, and errors come back in each protocol's own shape, so the SDK
// returns its typed errors (for example *ssooidc/types.InvalidGrantException)
// or a smithy.APIError with the real error code.
//
// The quickest start is New (in a test) or NewEnv, which wire an IdP and an
// AWS together on one Clock:
//
//	env := tiptest.New(t)
//	token := env.IdP.Token("alice")
//	cfg := env.Config() // the server's own credentials, BaseEndpoint = env.AWS.URL()
//
// Tests move time with Clock.Advance, inject faults with AWS.SetFault, count
// calls with AWS.Calls, and ask whose credentials were used with AWS.UserFor.
package tiptest
