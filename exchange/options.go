package exchange

import (
	"context"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/ssooidc"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
)

// SSOOIDCClient is the one method of the SSO OIDC client an [Exchanger]
// calls; *ssooidc.Client satisfies it.
type SSOOIDCClient interface {
	// CreateTokenWithIAM trades an assertion, or a refresh token, for an
	// Identity Center token and the user's identity context.
	CreateTokenWithIAM(ctx context.Context, in *ssooidc.CreateTokenWithIAMInput, optFns ...func(*ssooidc.Options)) (*ssooidc.CreateTokenWithIAMOutput, error)
}

// STSClient is the one method of the STS client an [Exchanger] calls to
// obtain the user's credentials; *sts.Client satisfies it.
type STSClient interface {
	// AssumeRole assumes the access role with the identity context.
	AssumeRole(ctx context.Context, in *sts.AssumeRoleInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleOutput, error)
}

// WebIdentityClient is the one method of the STS client an [Exchanger]
// calls to assume the application role; *sts.Client satisfies it.
type WebIdentityClient interface {
	// AssumeRoleWithWebIdentity assumes the application role with a
	// user's token.
	AssumeRoleWithWebIdentity(ctx context.Context, in *sts.AssumeRoleWithWebIdentityInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleWithWebIdentityOutput, error)
}

// Options configures an [Exchanger] or a [Provider]. The field names follow
// the official trusted identity propagation plugins.
type Options struct {
	// WebTokenProvider returns a current OIDC token of the user. [NewProvider]
	// requires it; an [Exchanger] uses it, when set, as the last resort of
	// [Exchanger.Renew].
	WebTokenProvider func(context.Context) (string, error)

	// ApplicationArn is the ARN of the IAM Identity Center customer managed
	// application that trusts the token issuer. Required.
	ApplicationArn string

	// AccessRoleArn is the role assumed with the user's identity context;
	// its trust policy allows sts:AssumeRole and sts:SetContext. Required.
	AccessRoleArn string

	// ApplicationRoleArn, when set, is assumed with the user's token through
	// AssumeRoleWithWebIdentity; its credentials sign CreateTokenWithIAM and
	// AssumeRole for every user. A session that the token gave session
	// tags or a source identity (claims https://aws.amazon.com/tags,
	// https://aws.amazon.com/source_identity) would pass them on to every
	// user: it is refused with an error matching ErrConfig, except by a
	// Provider, whose one identity they belong to. When empty,
	// SSOOIDCClient and STSClient are required and sign with their own
	// credentials.
	ApplicationRoleArn string

	// SSOOIDCClient calls CreateTokenWithIAM. When nil (allowed only with
	// ApplicationRoleArn) it is built from Config. With ApplicationRoleArn
	// its calls are signed with the application role's credentials.
	SSOOIDCClient SSOOIDCClient

	// STSClient calls AssumeRole. When nil (allowed only with
	// ApplicationRoleArn) it is built from Config. With ApplicationRoleArn
	// its calls are signed with the application role's credentials.
	STSClient STSClient

	// WebIdentityClient calls AssumeRoleWithWebIdentity for ApplicationRoleArn.
	// When nil it is built from Config, unsigned.
	WebIdentityClient WebIdentityClient

	// Config is the base of the clients built here: region (which must be
	// the IAM Identity Center instance's), BaseEndpoint, HTTPClient, Retryer.
	// When HTTPClient is nil or the SDK's BuildableClient, the clients use a
	// copy of it that keeps up to 128 idle connections per endpoint, so that
	// a burst of exchanges reuses connections to STS and IAM Identity Center
	// rather than opening them all at once; any other client is used as is.
	Config aws.Config

	// Duration of the user's credentials: 15 minutes to 12 hours, at most
	// 1 hour with ApplicationRoleArn (role chaining), and never above the
	// access role's maximum session duration. Default 15 minutes.
	Duration time.Duration

	// HashKey, when set, keys the hash that names a user in the default
	// session name ("tipkit-" and the hash; see SessionNameFunc) and in log records: an
	// HMAC-SHA256 of the issuer and subject. It must be at least 32 bytes
	// long and secret. Give every replica of a service the same key (the
	// redisstore NameKey serves), so that a user's session name is the
	// same on all of them. Without it the hash is an unkeyed SHA-256: a
	// stable pseudonym, not a secret, since anyone holding a list of
	// candidate users (their emails, say) can tell which one a name stands
	// for.
	HashKey []byte

	// SessionNameFunc, when set, returns the RoleSessionName of the user
	// with the given token issuer and subject (both as read from the token);
	// return a constant for one name shared by every user. Its result must
	// follow STS's rules (2 to 64 characters of letters, digits and
	// +=,.@_-), or the exchange fails with an error matching ErrConfig.
	// When nil, each user's session is named "tipkit-" followed by
	// [Exchanger.UserHash], which keeps sessions apart in CloudTrail.
	SessionNameFunc func(issuer, subject string) string

	// Session, when set, shapes each user's session: it receives the
	// claims of the user's token (decoded from its payload, once per
	// exchange; the token was verified by the caller, as the middleware
	// does) and returns the session tags, source identity and session
	// policies of the AssumeRole that carries the user's identity context.
	// It is called once per exchange of a token, never on a renewal: the
	// Session keeps what it returned (Session.SessionOptions, sealed with
	// the rest by a Store) and every renewal (AssumeRole again with the
	// identity context, the refresh token grant, a session loaded from a
	// Store by another replica) passes the same again.
	//
	// An error refuses the user: the exchange fails, before any AWS call,
	// with an error matching [ErrRefused] (the middleware answers 403
	// access_denied); the Cache remembers it for that token for RefusedTTL
	// and logs it. Options that STS would refuse (see [SessionOptions])
	// fail the exchange before any call with an error matching [ErrConfig]
	// that names the field and the rule but never the value: the hook must
	// return what STS accepts. The hook may be called concurrently and
	// must not keep or change the claims.
	Session func(claims map[string]any) (SessionOptions, error)

	// CredentialsExpiryWindow is how long before expiry credentials count
	// as expiring: a [Provider] and the provider a [Cache] hands out renew
	// them then, and the application role's credentials are renewed then
	// too. Default 2 minutes.
	CredentialsExpiryWindow time.Duration

	// MaxAttempts bounds the attempts of each AWS call (CreateTokenWithIAM,
	// AssumeRole, AssumeRoleWithWebIdentity), retries included: the
	// client's own SDK retryer makes them (its backoff and retry quota),
	// the only retry layer, with IAM Identity Center's SlowDownException
	// retried as throttling. A throttled call is thus sent at most
	// MaxAttempts times. Default 4.
	MaxAttempts int

	// Now returns the current time; tests set it to move time. Default
	// time.Now.
	Now func() time.Time

	// TracerProvider receives the spans of exchanges and renewals (made by
	// a [Cache]), with the AWS SDK's own spans of CreateTokenWithIAM,
	// AssumeRole and AssumeRoleWithWebIdentity beneath them on the clients
	// built here. Spans carry no token, identity context, secret or user
	// identifier. Default: the global provider (otel.GetTracerProvider).
	TracerProvider trace.TracerProvider
}

// Defaults and limits.
const (
	DefaultDuration                = 15 * time.Minute
	defaultCredentialsExpiryWindow = 2 * time.Minute
	defaultMaxAttempts             = 4

	minHashKey       = 32
	minDuration      = 15 * time.Minute
	maxDuration      = 12 * time.Hour
	maxChainDuration = time.Hour

	// contextProviderArn is the provider ARN of Identity Center's identity
	// context in AssumeRole's ProvidedContexts.
	contextProviderArn = "arn:aws:iam::aws:contextProvider/IdentityCenter"
	// grantJWTBearer is the grant type that trades an IdP token.
	grantJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	// grantRefreshToken is the grant type that renews with a refresh token.
	grantRefreshToken = "refresh_token"
)

var sessionNameRE = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)

// validSessionName reports whether name follows STS's RoleSessionName rules.
func validSessionName(name string) bool { return sessionNameRE.MatchString(name) }

// withDefaults fills the zero fields of o.
func (o Options) withDefaults() Options {
	if o.Duration == 0 {
		o.Duration = DefaultDuration
	}
	if o.CredentialsExpiryWindow == 0 {
		o.CredentialsExpiryWindow = defaultCredentialsExpiryWindow
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = defaultMaxAttempts
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.TracerProvider == nil {
		o.TracerProvider = otel.GetTracerProvider()
	}
	return o
}

// validate checks o (with defaults applied) and returns the first problem.
func (o *Options) validate() error {
	if !isARN(o.ApplicationArn, "sso", "application/") {
		return errApplicationArn
	}
	if !isARN(o.AccessRoleArn, "iam", "role/") {
		return errAccessRoleArn
	}
	if o.ApplicationRoleArn != "" && !isARN(o.ApplicationRoleArn, "iam", "role/") {
		return errApplicationRoleArn
	}
	if o.ApplicationRoleArn != "" && o.ApplicationRoleArn == o.AccessRoleArn {
		return errSameRole
	}
	if o.ApplicationRoleArn == "" && (o.SSOOIDCClient == nil || o.STSClient == nil) {
		return errClients
	}
	if o.needsBuiltClient() && o.Config.Region == "" {
		return errRegion
	}
	if o.Duration < minDuration || o.Duration > maxDuration || o.Duration%time.Second != 0 {
		return errDuration
	}
	if o.ApplicationRoleArn != "" && o.Duration > maxChainDuration {
		return errRoleChaining
	}
	if len(o.HashKey) > 0 && len(o.HashKey) < minHashKey {
		return &configError{"HashKey, when set, must be at least 32 bytes long"}
	}
	if o.CredentialsExpiryWindow < 0 {
		return &configError{"CredentialsExpiryWindow must not be negative"}
	}
	if o.MaxAttempts < 1 {
		return &configError{"MaxAttempts must be positive"}
	}
	return nil
}

// needsBuiltClient reports whether a client must be built from Config.
func (o *Options) needsBuiltClient() bool {
	if o.SSOOIDCClient == nil || o.STSClient == nil {
		return true
	}
	return o.ApplicationRoleArn != "" && o.WebIdentityClient == nil
}

// isARN reports whether s is an ARN of service whose resource starts with
// prefix and names something after it.
func isARN(s, service, prefix string) bool {
	a, err := arn.Parse(s)
	if err != nil || a.Service != service || a.AccountID == "" {
		return false
	}
	return len(a.Resource) > len(prefix) && a.Resource[:len(prefix)] == prefix
}
