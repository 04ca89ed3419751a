package exchange

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"golang.org/x/sync/singleflight"

	"github.com/tipkit/tipkit/internal/useragent"
)

// bootstrapSessionName names the application role's session.
const bootstrapSessionName = "tipkit-application"

// bootstrapDuration is asked for the application role's credentials: the
// smallest maximum a role can have, so always allowed.
const bootstrapDuration = 3600

// tokenKey carries, in a call's context, a user token that may assume the
// application role.
type tokenKey struct{}

// withToken returns ctx carrying token for the bootstrap; ctx itself when
// token is empty.
func withToken(ctx context.Context, token string) context.Context {
	if token == "" {
		return ctx
	}
	return context.WithValue(ctx, tokenKey{}, token)
}

// bootstrap holds the application role's credentials, shared by all users
// and renewed before they expire. It is the aws.CredentialsProvider that
// signs CreateTokenWithIAM and AssumeRole when an application role is
// configured. It is not an aws.CredentialsCache around an
// AssumeRoleWithWebIdentity provider: that cache judges expiry by the SDK's
// wall clock rather than Options.Now, and its provider cannot pick the
// token to renew with from the calling request. (Serving credentials that
// are still valid when a renewal fails, which it does here, the cache can
// do too, through a provider implementing
// HandleFailRefreshCredentialsCacheStrategy.)
type bootstrap struct {
	x   *Exchanger
	web WebIdentityClient

	mu    sync.Mutex
	creds aws.Credentials
	token string // the latest token that assumed the role, to renew with
	group singleflight.Group
}

// Retrieve returns the application role's credentials, renewing them with
// the token carried by ctx, or else the latest token that worked.
func (b *bootstrap) Retrieve(ctx context.Context) (aws.Credentials, error) {
	token, _ := ctx.Value(tokenKey{}).(string)
	return b.credentials(ctx, token)
}

// credentials returns valid application role credentials, assuming the role
// with token (or the latest token) when they are missing or expiring.
func (b *bootstrap) credentials(ctx context.Context, token string) (aws.Credentials, error) {
	now := b.x.o.Now()
	b.mu.Lock()
	creds, last := b.creds, b.token
	b.mu.Unlock()
	if creds.HasKeys() && now.Before(creds.Expires.Add(-b.x.o.CredentialsExpiryWindow)) {
		return creds, nil
	}
	if token == "" || b.x.expired(token) {
		token = last
	}
	if token == "" || b.x.expired(token) {
		if creds.HasKeys() && now.Before(creds.Expires) {
			return creds, nil
		}
		return aws.Credentials{}, &Error{kind: kindReauthenticate, Op: "AssumeRoleWithWebIdentity", Code: "NoValidToken"}
	}
	ch := b.group.DoChan("", func() (any, error) {
		// Another call may have stored fresh credentials between the look
		// above and this one: do not assume the role again.
		b.mu.Lock()
		cur := b.creds
		b.mu.Unlock()
		if cur.HasKeys() && b.x.o.Now().Before(cur.Expires.Add(-b.x.o.CredentialsExpiryWindow)) {
			return cur, nil
		}
		return b.assume(ctx, token)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			if creds.HasKeys() && now.Before(creds.Expires) {
				return creds, nil
			}
			return aws.Credentials{}, r.Err
		}
		return r.Val.(aws.Credentials), nil
	case <-ctx.Done():
		return aws.Credentials{}, &Error{kind: kindUnavailable, Op: "AssumeRoleWithWebIdentity", Err: ctx.Err()}
	}
}

// assume calls AssumeRoleWithWebIdentity on a context detached from the
// caller's, so that one caller giving up does not fail the others waiting.
func (b *bootstrap) assume(ctx context.Context, token string) (aws.Credentials, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
	defer cancel()
	in := &sts.AssumeRoleWithWebIdentityInput{
		RoleArn:          aws.String(b.x.o.ApplicationRoleArn),
		RoleSessionName:  aws.String(bootstrapSessionName),
		WebIdentityToken: aws.String(token),
		DurationSeconds:  aws.Int32(bootstrapDuration),
	}
	out, err := b.web.AssumeRoleWithWebIdentity(ctx, in, func(o *sts.Options) {
		o.APIOptions = append(o.APIOptions, useragent.Add)
		o.RetryMaxAttempts = b.x.o.MaxAttempts
		o.Retryer = retryer(o.Retryer)
	})
	if err != nil {
		return aws.Credentials{}, classify("AssumeRoleWithWebIdentity", err)
	}
	creds, err := credentialsOf(out.Credentials, "AssumeRoleWithWebIdentity")
	if err != nil {
		return aws.Credentials{}, err
	}
	b.mu.Lock()
	b.creds, b.token = creds, token
	b.mu.Unlock()
	return creds, nil
}
