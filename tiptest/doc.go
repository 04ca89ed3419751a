// Package tiptest runs, on 127.0.0.1, a local OpenID Connect identity
// provider and a local AWS that speaks the real wire protocols of AWS IAM
// Identity Center (SSO OIDC CreateTokenWithIAM, restJson1; the sso-admin
// reads of the application's setup, awsJson1_1), AWS STS
// (AssumeRoleWithWebIdentity, AssumeRole, GetCallerIdentity, awsQuery),
// IAM (GetRole, awsQuery), S3 Access Grants (S3 Control GetDataAccess and
// ListCallerAccessGrants, restXml) and a small Amazon S3 (path-style ListObjectsV2, GetObject, HeadObject, PutObject,
// DeleteObject, DeleteObjects and CopyObject, restXml), so that code using trusted identity propagation can be tested
// with the unmodified aws-sdk-go-v2 clients and no AWS account.
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
// # S3 and S3 Access Grants
//
// As on AWS, an identity-enhanced session does not reach S3 itself: it
// asks S3 Access Grants for credentials with S3 Control GetDataAccess
// (target "s3://bucket/prefix*", or an object key with targetType Object;
// permission READ, WRITE or READWRITE), and those credentials call S3.
// AWS.Grant and AWS.GrantGroup give an Identity Center user, or a group of
// users (AWS.SetGroups), READ, WRITE or READWRITE on the keys under a
// prefix of a bucket. As on AWS, a user is granted by the user's ID in the
// identity store, a GUID (AWS.UserID), which is also the sub claim of the
// idToken that CreateTokenWithIAM returns, beside the identity store's ID
// (AWS.IdentityStoreID) in aws:identity_store_id; a user's name stands for
// that ID in AWS.Grant and AWS.SetGroups. ListCallerAccessGrants lists the
// grants of the caller's user and of the user's groups, a page at a time,
// optionally those of a grant scope only. GetDataAccess vends credentials only to an
// identity-enhanced session of the access role, only for a target within
// a grant of its user (or of the user's groups) that gives the permission
// asked for (a READ grant gives neither WRITE nor READWRITE), and answers
// AccessDenied otherwise. The credentials it vends are new session
// credentials of an S3 Access Grants location role, verified with SigV4
// like every other, that expire (after durationSeconds, 900 to 43200,
// default 3600) and reach only the closest matching grant's prefix (with
// privilege Minimal: the target itself) with the permission asked for.
// S3 object operations accept nothing else: the server user's
// credentials, role sessions without an identity context and the
// identity-enhanced session itself get S3's 403 AccessDenied, as on AWS
// without a bucket policy that names them. A listing needs READ on a scope
// that holds its prefix (listing the bucket root needs a grant of the
// whole bucket). DeleteObjects authorises each key on its own and answers
// the refused ones in its result, as S3 does; CopyObject needs READ on
// the source and WRITE on the destination with the request's one set of
// credentials. Tests seed and check data with AWS.CreateBucket,
// AWS.PutObject and AWS.Object, which need no grant; NewEnv creates the
// empty bucket Env.Bucket.
//
// Point the s3 client at the local AWS with path-style addressing, and the
// s3control client with no change at all:
//
//	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
//	control := s3control.NewFromConfig(cfg)
//
// The s3control client sends GetDataAccess to the host of the account,
// "{AccountId}." in front of BaseEndpoint's host (as to
// "{AccountId}.s3-control.{Region}.amazonaws.com" on AWS), with the
// x-amz-account-id header, which must name the same account, the local
// AWS's. No DNS resolves "123456789012.127.0.0.1", so the aws.Config of
// Env.Config carries AWS.HTTPClient, which connects such names to the
// local AWS; set it as aws.Config.HTTPClient in a configuration of your
// own.
//
// S3 and S3 Control requests are told from STS and SSO OIDC requests by
// the service of their SigV4 credential scope ("s3" for both), and from
// each other by their host, so any bucket name is fine. Signatures are
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
// answered 501 NotImplemented; so are the S3 Control operations other
// than GetDataAccess and ListCallerAccessGrants, whose errors have S3
// Control's <ErrorResponse> shape.
//
// # IAM Identity Center's setup, read and broken
//
// The local AWS also serves the reads an operator, or cmd/tipdoctor, makes
// to see how the exchange is set up: sso-admin DescribeApplication,
// GetApplicationGrant (the JWT bearer grant with its trusted token issuer
// and authorised audiences; the refresh_token grant) and
// DescribeTrustedTokenIssuer (issuer URL and claim mapping), on the
// awsJson1_1 protocol with X-Amz-Target "SWBExternalService.<Operation>"
// and the signing name "sso", and IAM GetRole, on awsQuery like STS and
// signed for us-east-1 as IAM is, with the role's trust policy URL-encoded
// as IAM returns it. The server user may call them; AWS.Configure can
// refuse them (Setup.DeniedActions), and sessions of the roles get
// AccessDenied.
//
// AWS.Configure sets the model up wrongly on purpose, as administrators
// do: a trusted token issuer URL with a trailing slash, an audience the
// application does not authorise, no JWT bearer grant, an access role
// whose trust policy lacks sts:SetContext, an application or a role that
// does not exist (see Setup). The exchange honours the same setup, with
// the errors AWS gives: InvalidGrantException for an issuer or audience
// that does not match, UnauthorizedClientException without the grant,
// InvalidClientException without the application, AccessDenied from
// AssumeRole without sts:SetContext or without the role.
//
// # Session tags, source identity and session policies
//
// AssumeRole honours Tags, TransitiveTagKeys, SourceIdentity, Policy and
// PolicyArns with STS's rules: at most 50 tags, keys of 1 to 128 and
// values of up to 256 characters of letters, digits, spaces and
// _.:/=+-@, no key starting with "aws:" and no two keys differing only by
// case, transitive keys among the tags, a source identity of 2 to 64
// characters of [\w+=,.@-] not starting with "aws:" (and, in a role chain,
// equal to the caller's), a JSON policy of at most 2048 characters with
// the ARNs, at most 10 ARNs (ValidationError or MalformedPolicyDocument);
// and a modelled packed size of the policies and tags (the policy's
// characters outside white space, the ARNs, the tags' keys and values:
// over 8192, PackedPolicyTooLarge). Tags need sts:TagSession and a source
// identity sts:SetSourceIdentity in the access role's trust policy (both
// there unless Setup.AccessRoleTagSession or
// Setup.AccessRoleSetSourceIdentity is turned off: AccessDenied). A
// caller's transitive tags and source identity pass on to the session it
// assumes. AssumeRoleWithWebIdentity takes the same from the token's
// claims "https://aws.amazon.com/tags" (principal_tags, each key mapped
// to an array of its one value, and transitive_tag_keys) and
// "https://aws.amazon.com/source_identity", with the same rules (a claim
// of another shape: InvalidIdentityToken); they need
// Setup.ApplicationRoleTagSession and
// Setup.ApplicationRoleSetSourceIdentity (both off to begin with:
// AccessDenied), and the answer tells PackedPolicySize (a percentage,
// rounded up) and SourceIdentity, as STS's does. AWS.Session tells what a session carries. GetDataAccess
// refuses (AccessDenied) a session whose inline session policy denies
// s3:GetDataAccess (a Deny statement whose Action matches it, wildcards
// included) or allows it in no statement; resources and conditions are
// not evaluated, and managed session policies (PolicyArns) allow
// everything, as the local AWS holds none.
//
// # Testing
//
// Tests move time with Clock.Advance, inject faults with AWS.SetFault (on
// the S3 operations and GetDataAccess too, for example "SlowDown" on
// "GetObject"), count calls with AWS.Calls (all of them with
// AWS.CallCounts), and ask whose credentials were used with AWS.UserFor
// (which knows the user of the credentials that GetDataAccess vends, too).
// AWS.HandleControl serves a test's own controls on the AWS's server,
// under ControlPath, for programs that cannot call Go: cmd/tiptest serves
// its faults and counters there.
package tiptest
