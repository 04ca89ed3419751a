// Package tiptest runs, on 127.0.0.1, a local OpenID Connect identity
// provider and a local AWS that speaks the real wire protocols of AWS IAM
// Identity Center (SSO OIDC CreateTokenWithIAM, restJson1) and AWS STS
// (AssumeRoleWithWebIdentity, AssumeRole, GetCallerIdentity, awsQuery),
// and a small Amazon S3 (path-style ListObjectsV2, GetObject, HeadObject
// and PutObject, restXml), so that code using trusted identity propagation
// can be tested with the unmodified aws-sdk-go-v2 clients and no AWS
// account.
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
// # S3
//
// The local S3 authorises the user behind the credentials, as S3 Access
// Grants does for identity-enhanced sessions: AWS.Grant and AWS.GrantGroup
// give an Identity Center user, or a group of users (AWS.SetGroups), READ,
// WRITE or READWRITE on the keys under a prefix of a bucket. A user reaches
// only the keys under their grants, and lists only prefixes within a READ
// grant (listing the bucket root needs a grant of the whole bucket); the
// server user's credentials and role sessions without an identity context
// reach nothing. Every refusal is S3's 403 AccessDenied. Tests seed and
// check data with AWS.CreateBucket, AWS.PutObject and AWS.Object, which
// need no grant; NewEnv creates the empty bucket Env.Bucket.
//
// Point the s3 client at the local AWS with path-style addressing:
//
//	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
//
// S3 requests are told from STS and SSO OIDC requests by the service of
// their SigV4 credential scope, so any bucket name is fine. Signatures are
// checked as S3 checks them: the path is URI-encoded once, and the
// x-amz-content-sha256 header is required and must be the SHA-256 of the
// body, which is what the SDK sends on an http:// endpoint
// (UNSIGNED-PAYLOAD, aws-chunked uploads and presigned URLs are answered
// 501 NotImplemented). Content-MD5 and x-amz-checksum-* headers are
// verified; objects keep the checksum they were written with (CRC64NVME
// when none was sent), which GetObject returns when the client asks for
// it. Errors have S3's <Error> shape, so the SDK returns its typed errors
// (for example *s3/types.NoSuchKey) or a smithy.APIError with S3's code.
// Versioning, multipart uploads, conditional requests, copies, deletes and
// bucket operations other than ListObjectsV2 are not modelled: they are
// answered 501 NotImplemented.
//
// # Testing
//
// Tests move time with Clock.Advance, inject faults with AWS.SetFault (on
// the S3 operations too, for example "SlowDown" on "GetObject"), count
// calls with AWS.Calls, and ask whose credentials were used with
// AWS.UserFor.
package tiptest
