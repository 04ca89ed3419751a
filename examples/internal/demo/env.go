package demo

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ssooidc"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/middleware"
)

// The environment variables that point an example at real AWS.
const (
	EnvIssuer             = "TIPKIT_ISSUER"               // exact iss of the users' tokens, the trusted token issuer's URL
	EnvAudience           = "TIPKIT_AUDIENCE"             // aud accepted, comma-separated; one of the application's audiences
	EnvApplicationArn     = "TIPKIT_APPLICATION_ARN"      // the IAM Identity Center customer managed application
	EnvAccessRoleArn      = "TIPKIT_ACCESS_ROLE_ARN"      // the role assumed with each user's identity context
	EnvApplicationRoleArn = "TIPKIT_APPLICATION_ROLE_ARN" // optional: the role assumed with the user's token to sign the exchange
	EnvRegion             = "AWS_REGION"                  // the region of IAM Identity Center, and of the S3 (bucket, Access Grants instance) and Q Business calls
	EnvBucket             = "TIPKIT_BUCKET"               // the S3 bucket of the file servers
	EnvAccountID          = "TIPKIT_ACCOUNT_ID"           // optional: the account of the S3 Access Grants instance; default: the access role's, from STS GetCallerIdentity
	EnvAddr               = "TIPKIT_ADDR"                 // optional: listen address, default 127.0.0.1:8080; alone, it keeps the examples local
)

// accountPattern is an AWS account id.
var accountPattern = regexp.MustCompile(`^[0-9]{12}$`)

// Settings is the configuration of an example against real AWS.
type Settings struct {
	Issuer             string
	Audience           []string
	ApplicationArn     string
	AccessRoleArn      string
	ApplicationRoleArn string // empty: the server's own credentials sign the exchange
	Region             string
	Bucket             string
	AccountID          string // empty: found with STS GetCallerIdentity
}

// ErrNoSettings is returned by SettingsFromEnv when the environment names
// none of the TIPKIT_ variables (TIPKIT_ADDR aside, which local mode
// honours too): the examples then run locally.
var ErrNoSettings = errors.New("no TIPKIT_ variable is set")

// SettingsFromEnv reads Settings through getenv (os.Getenv). It returns
// ErrNoSettings when no TIPKIT_ variable but TIPKIT_ADDR is set, and an
// error naming the missing variables when some are set but not all the
// required ones. TIPKIT_BUCKET is read but not required here: only the
// file servers need it. TIPKIT_ACCOUNT_ID, when set, must be 12 digits.
func SettingsFromEnv(getenv func(string) string) (Settings, error) {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	s := Settings{
		Issuer:             get(EnvIssuer),
		ApplicationArn:     get(EnvApplicationArn),
		AccessRoleArn:      get(EnvAccessRoleArn),
		ApplicationRoleArn: get(EnvApplicationRoleArn),
		Region:             get(EnvRegion),
		Bucket:             get(EnvBucket),
		AccountID:          get(EnvAccountID),
	}
	for a := range strings.SplitSeq(get(EnvAudience), ",") {
		if a = strings.TrimSpace(a); a != "" {
			s.Audience = append(s.Audience, a)
		}
	}
	set := false
	for _, k := range []string{EnvIssuer, EnvAudience, EnvApplicationArn, EnvAccessRoleArn, EnvApplicationRoleArn, EnvBucket, EnvAccountID} {
		if get(k) != "" {
			set = true
		}
	}
	if !set {
		return Settings{}, ErrNoSettings
	}
	var missing []string
	for k, v := range map[string]bool{
		EnvIssuer: s.Issuer != "", EnvAudience: len(s.Audience) > 0, EnvApplicationArn: s.ApplicationArn != "",
		EnvAccessRoleArn: s.AccessRoleArn != "", EnvRegion: s.Region != "",
	} {
		if !v {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return s, fmt.Errorf("incomplete environment: %s not set", strings.Join(missing, ", "))
	}
	if s.AccountID != "" && !accountPattern.MatchString(s.AccountID) {
		return s, fmt.Errorf("%s must be 12 digits", EnvAccountID)
	}
	return s, nil
}

// EnvHelp describes the environment variables, one a line; with bucket it
// also lists TIPKIT_BUCKET, which the file servers need.
func EnvHelp(bucket bool) string {
	lines := []string{
		EnvIssuer + "               the exact iss of your identity provider's tokens",
		EnvAudience + "             the aud to accept (comma-separated)",
		EnvApplicationArn + "      the IAM Identity Center customer managed application",
		EnvAccessRoleArn + "      the role assumed with each user's identity context",
		EnvApplicationRoleArn + " optional: the role that signs the exchange; without it, the server's own credentials do",
		EnvRegion + "                  the region of IAM Identity Center, and of the S3 and Q Business calls",
	}
	if bucket {
		lines = append(lines,
			EnvBucket+"               the S3 bucket, in AWS_REGION",
			EnvAccountID+"           optional: the account of the S3 Access Grants instance (default: the access role's)")
	}
	lines = append(lines, EnvAddr+"                 optional: listen address (default "+defaultAddr+")")
	return "  " + strings.Join(lines, "\n  ") + "\n"
}

// NewMiddleware builds the middleware for real AWS from s, with realm as
// the realm of its challenges. The AWS configuration comes from
// config.LoadDefaultConfig (region, retries, and the server's own
// credentials). With an application role, the role, assumed with each
// user's token, signs the exchange and the server needs no credentials of
// its own; without one, the server's own credentials sign it.
func NewMiddleware(ctx context.Context, s Settings, realm string) (*middleware.Middleware, error) {
	return newMiddleware(ctx, s, realm, nil)
}

// newMiddleware is NewMiddleware with the options adjusted by adjust, when
// not nil.
func newMiddleware(ctx context.Context, s Settings, realm string, adjust func(*middleware.Options) error) (*middleware.Middleware, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(s.Region))
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	x := exchange.Options{
		ApplicationArn:     s.ApplicationArn,
		AccessRoleArn:      s.AccessRoleArn,
		ApplicationRoleArn: s.ApplicationRoleArn,
		Config:             cfg,
	}
	if s.ApplicationRoleArn == "" {
		x.SSOOIDCClient = ssooidc.NewFromConfig(cfg)
		x.STSClient = sts.NewFromConfig(cfg)
	}
	o := middleware.Options{
		Issuer:    s.Issuer,
		Audience:  s.Audience,
		Exchange:  x,
		AWSConfig: cfg,
		Realm:     realm,
	}
	if adjust != nil {
		if err := adjust(&o); err != nil {
			return nil, err
		}
	}
	return middleware.New(ctx, o)
}
