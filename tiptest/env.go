package tiptest

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Retry settings of Env.Config: few, quick attempts, so that tests with
// faults stay fast.
const (
	envMaxAttempts = 3
	envMaxBackoff  = 50 * time.Millisecond
)

// Option changes the Env built by NewEnv or New.
type Option func(*envOptions)

// envOptions collects the Options of NewEnv.
type envOptions struct {
	refreshGrant bool
	tokenTTL     time.Duration
	region       string
	omitContext  bool
	audience     string
}

// WithRefreshGrant gives the Identity Center application the
// refresh_token grant (AWSOptions.RefreshGrant).
func WithRefreshGrant() Option { return func(o *envOptions) { o.refreshGrant = true } }

// WithTokenTTL sets the lifetime of the Identity Center access token and
// identity context (AWSOptions.TokenTTL).
func WithTokenTTL(d time.Duration) Option { return func(o *envOptions) { o.tokenTTL = d } }

// WithRegion sets the region of STS and of the Identity Center instance.
func WithRegion(r string) Option { return func(o *envOptions) { o.region = r } }

// WithoutIdentityContextField makes CreateTokenWithIAM answer without
// awsAdditionalDetails (AWSOptions.OmitIdentityContextField).
func WithoutIdentityContextField() Option { return func(o *envOptions) { o.omitContext = true } }

// WithAudience sets the aud of the IdP's tokens, which is also the one
// audience authorised for the application.
func WithAudience(aud string) Option { return func(o *envOptions) { o.audience = aud } }

// Env is a local IdP and a local AWS that trusts it, sharing one Clock,
// with an empty S3 bucket, Bucket.
type Env struct {
	// IdP is the identity provider, the application's trusted token issuer.
	IdP *IdP
	// AWS is the local STS and IAM Identity Center.
	AWS *AWS
	// Clock is the clock of both; advance it to make things expire.
	Clock *Clock
	// ApplicationArn is the Identity Center application (clientId of
	// CreateTokenWithIAM).
	ApplicationArn string
	// AccessRoleArn is the role AssumeRole gives identity-enhanced
	// sessions of.
	AccessRoleArn string
	// ApplicationRoleArn is the role AssumeRoleWithWebIdentity assumes with
	// a token of the IdP.
	ApplicationRoleArn string
	// Bucket is the S3 bucket NewEnv creates, DefaultBucket. It holds no
	// objects and grants nothing until a test seeds it with AWS.PutObject
	// and AWS.Grant.
	Bucket string
}

// DefaultBucket is the name of the S3 bucket NewEnv creates.
const DefaultBucket = "tipkit-data"

// NewEnv starts an IdP and an AWS that trusts it: the AWS's issuer is
// IdP.Issuer() and its one audience is IdP.Audience(). Call Close to stop
// both.
func NewEnv(opts ...Option) (*Env, error) {
	var o envOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	clock := NewClock()
	idp, err := NewIdP(IdPOptions{Clock: clock, Audience: o.audience})
	if err != nil {
		return nil, err
	}
	a, err := NewAWS(AWSOptions{
		Clock:                    clock,
		Region:                   o.region,
		Issuer:                   idp.Issuer(),
		Audiences:                []string{idp.Audience()},
		RefreshGrant:             o.refreshGrant,
		TokenTTL:                 o.tokenTTL,
		OmitIdentityContextField: o.omitContext,
	})
	if err == nil {
		err = a.CreateBucket(DefaultBucket)
		if err != nil {
			a.Close()
		}
	}
	if err != nil {
		idp.Close()
		return nil, err
	}
	return &Env{
		IdP:                idp,
		AWS:                a,
		Clock:              clock,
		ApplicationArn:     a.ApplicationArn(),
		AccessRoleArn:      a.AccessRoleArn(),
		ApplicationRoleArn: a.ApplicationRoleArn(),
		Bucket:             DefaultBucket,
	}, nil
}

// New is NewEnv for tests: it fails tb if the Env cannot start and closes
// the Env when the test ends.
func New(tb testing.TB, opts ...Option) *Env {
	tb.Helper()
	e, err := NewEnv(opts...)
	if err != nil {
		tb.Fatalf("tiptest.New: %v", err)
	}
	tb.Cleanup(func() { _ = e.Close() })
	return e
}

// Close stops the AWS and the IdP. It is safe to call more than once.
func (e *Env) Close() error {
	e.AWS.Close()
	e.IdP.Close()
	return nil
}

// Config returns an aws.Config for the sts, ssooidc, s3 and s3control
// clients (the s3 client with UsePathStyle set): the AWS's region and URL
// (BaseEndpoint), the AWS's HTTPClient (which resolves the account host
// names of S3 Control), the server user's static credentials, the request and
// response checksum modes that config.LoadDefaultConfig gives
// (WhenSupported: PutObject sends a CRC32, GetObject validates the
// object's checksum), and a retryer of at most 3 quick attempts with no
// retry quota.
func (e *Env) Config() aws.Config {
	creds := e.AWS.ServerCredentials()
	return aws.Config{
		Region:       e.AWS.Region(),
		BaseEndpoint: aws.String(e.AWS.URL()),
		HTTPClient:   e.AWS.HTTPClient(),
		Credentials: credentials.NewStaticCredentialsProvider(
			creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenSupported,
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = envMaxAttempts
				o.MaxBackoff = envMaxBackoff
				o.RateLimiter = ratelimit.None
			})
		},
	}
}
