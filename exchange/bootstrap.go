package exchange

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

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
	r   renewer[bootState]
	// oneIdentity is set for a Provider: its session serves the identity
	// whose token assumed the role, and no other, so it may carry that
	// identity's tags and source identity.
	oneIdentity bool
}

// bootState is the application role's credentials and the token that
// assumed the role, to renew with when no request brings one.
type bootState struct {
	creds aws.Credentials
	token string
}

func newBootstrap(x *Exchanger, web WebIdentityClient) *bootstrap {
	return &bootstrap{x: x, web: web, r: renewer[bootState]{
		now: x.o.Now, window: x.o.CredentialsExpiryWindow,
		creds: func(s bootState) aws.Credentials { return s.creds },
	}}
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
	st, err := b.r.get(ctx, func(held bootState) (bootState, error) {
		tok := token
		if tok == "" || b.x.expired(tok) {
			tok = held.token
		}
		if tok == "" || b.x.expired(tok) {
			return bootState{}, &Error{kind: kindReauthenticate, Op: "AssumeRoleWithWebIdentity", Code: "NoValidToken"}
		}
		creds, err := b.assume(ctx, tok)
		if err != nil {
			return bootState{}, err
		}
		return bootState{creds: creds, token: tok}, nil
	})
	if err != nil {
		return aws.Credentials{}, err
	}
	return st.creds, nil
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
	if out == nil {
		return credentialsOf(nil, "AssumeRoleWithWebIdentity")
	}
	if !b.oneIdentity {
		if err := sharedSession(out, token); err != nil {
			return aws.Credentials{}, err
		}
	}
	return credentialsOf(out.Credentials, "AssumeRoleWithWebIdentity")
}

// Errors of an application role session that a user's token shaped: it
// would sign every user's exchange, and pass what the token gave it on to
// every user's session.
var (
	errBootstrapSourceIdentity error = &Error{kind: kindConfig, Op: "AssumeRoleWithWebIdentity", Code: "SourceIdentityFromToken", Err: &configError{
		"the application role's session got a source identity from the user's token (claim https://aws.amazon.com/source_identity), " +
			"which it would pass on to every user's session: the identity provider should not add that claim to tokens for this audience, " +
			"or the application role's trust policy should not allow sts:SetSourceIdentity for web identities"}}
	errBootstrapTags error = &Error{kind: kindConfig, Op: "AssumeRoleWithWebIdentity", Code: "SessionTagsFromToken", Err: &configError{
		"the application role's session got session tags or policies from the user's token (claim https://aws.amazon.com/tags), " +
			"whose transitive tags it would pass on to every user's session: the identity provider should not add that claim to tokens for this audience, " +
			"or the application role's trust policy should not allow sts:TagSession for web identities"}}
)

// sharedSession refuses an application role session that carries what
// the token that assumed the role gave it: a source identity, or session
// tags or policies. It reads STS's answer (SourceIdentity; PackedPolicySize,
// which STS answers only when the call passed tags or policies, and the
// bootstrap passes neither itself) and, in case a later STS stops
// answering the deprecated PackedPolicySize, the token's own claims: STS
// issues a session for a token that passes tags or a source identity only
// with them. Such a session would act for one user in every user's
// exchange, so it is never used.
func sharedSession(out *sts.AssumeRoleWithWebIdentityOutput, token string) error {
	tags, source := tokenShape(token)
	//lint:ignore SA1019 SessionTokenUtilization, its replacement, is answered for every session and tells nothing of tags.
	packed := aws.ToInt32(out.PackedPolicySize)
	switch {
	case aws.ToString(out.SourceIdentity) != "" || source:
		return errBootstrapSourceIdentity
	case packed > 0 || tags:
		return errBootstrapTags
	}
	return nil
}

// Claims through which an identity provider passes session tags and a
// source identity to AssumeRoleWithWebIdentity.
const (
	claimSessionTags    = "https://aws.amazon.com/tags"
	claimSourceIdentity = "https://aws.amazon.com/source_identity"
	claimPrincipalTags  = "principal_tags"
	claimTransitiveTags = "transitive_tag_keys"
)

// tokenShape reports whether token's claims pass session tags (a tags
// claim with principal tags or transitive keys, or one it cannot read) or
// a source identity (a non-empty claim).
func tokenShape(token string) (tags, source bool) {
	var claims map[string]json.RawMessage
	if decodeClaims(token, &claims) != nil {
		return false, false
	}
	if raw, ok := claims[claimSourceIdentity]; ok {
		var si *string
		source = json.Unmarshal(raw, &si) != nil || si != nil && *si != ""
	}
	if raw, ok := claims[claimSessionTags]; ok && string(raw) != "null" {
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			return true, source
		}
		var principal map[string]json.RawMessage
		var transitive []json.RawMessage
		if p, ok := obj[claimPrincipalTags]; ok && json.Unmarshal(p, &principal) != nil {
			return true, source
		}
		if t, ok := obj[claimTransitiveTags]; ok && json.Unmarshal(t, &transitive) != nil {
			return true, source
		}
		tags = len(principal) > 0 || len(transitive) > 0
	}
	return tags, source
}
