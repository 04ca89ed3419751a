package exchange

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ssooidc"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go/tracing/smithyoteltracing"

	"github.com/tipkit/tipkit/internal/useragent"
)

// Session is the result of an exchange: one user's identity-enhanced
// credentials and what renews them without the user's token. It holds
// secrets: never log its fields; its String method shows none of them.
type Session struct {
	// Credentials are the user's credentials on the access role.
	Credentials aws.Credentials
	// IdentityContext is the opaque identity context from IAM Identity
	// Center, reused by AssumeRole until ContextExpires.
	IdentityContext string
	// ContextExpires is when the identity context (the Identity Center token)
	// expires.
	ContextExpires time.Time
	// RefreshToken is the Identity Center refresh token, when the
	// application has the refresh grant; empty otherwise.
	RefreshToken string
	// Issuer and Subject are the iss and sub claims of the token that was
	// exchanged, as read from it (the Exchanger does not verify tokens).
	Issuer, Subject string
	// UserID is the user's ID in IAM Identity Center's identity store (a
	// GUID), and IdentityStoreID the ID of that store: the sub and
	// aws:identity_store_id claims of the idToken CreateTokenWithIAM
	// returned, read without verification as the identity context is.
	// Empty when the idToken did not carry them. They are not secrets, but
	// they name a person: they are not logged either.
	UserID, IdentityStoreID string
	// SessionOptions is what Options.Session returned for the token that
	// was exchanged, passed again to every AssumeRole that renews the
	// session; nil when the session is not shaped. It is shared by the
	// Sessions renewed from this one: never change it. Its values may come
	// from the user's claims: they are not logged either.
	SessionOptions *SessionOptions
}

// Expires returns when the session's credentials expire.
func (s *Session) Expires() time.Time { return s.Credentials.Expires }

// String describes s without any secret. Its value receiver makes a
// Session print the same whether fmt is given the value or a pointer, and
// whatever the verb (%v, %+v, %s; %#v through GoString), and in an
// exported field of another struct. fmt cannot call String on an
// unexported field: a struct holding a Session there prints its secrets,
// so never log such a struct. A nil *Session prints "<nil>".
func (s Session) String() string {
	return fmt.Sprintf("exchange.Session{credentials until %s, identity context until %s, refresh token: %t}",
		s.Credentials.Expires.UTC().Format(time.RFC3339), s.ContextExpires.UTC().Format(time.RFC3339), s.RefreshToken != "")
}

// GoString is String, so that %#v does not print the secrets either.
func (s Session) GoString() string { return s.String() }

// Exchanger trades users' tokens for identity-enhanced credentials. It is
// safe for concurrent use by many users. It keeps no per-user state except
// the keys of the tokens it exchanged, until they expire, so that it never
// sends IAM Identity Center a token it processed before; with an
// application role, it also keeps the last token that assumed the role, to
// renew the role's shared credentials.
type Exchanger struct {
	o     Options
	oidc  SSOOIDCClient
	sts   STSClient
	boot  *bootstrap // nil without an application role
	spent spentSet
}

// callTimeout bounds calls made on a context detached from their caller.
const callTimeout = 30 * time.Second

// contextMargin is how long before its expiry an identity context is no
// longer offered to AssumeRole.
const contextMargin = 30 * time.Second

// New validates o and returns an Exchanger. Every problem of o is reported
// here, as an error matching [ErrConfig], rather than at the first exchange.
func New(o Options) (*Exchanger, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	o.Config.HTTPClient = withIdleConns(o.Config.HTTPClient)
	x := &Exchanger{o: o, oidc: o.SSOOIDCClient, sts: o.STSClient}
	// The SDK's own spans of the calls made here, beneath the exchange's.
	tp := smithyoteltracing.Adapt(o.TracerProvider)
	if x.oidc == nil {
		x.oidc = ssooidc.NewFromConfig(o.Config.Copy(), func(so *ssooidc.Options) { so.TracerProvider = tp })
	}
	if x.sts == nil {
		x.sts = sts.NewFromConfig(o.Config.Copy(), func(so *sts.Options) { so.TracerProvider = tp })
	}
	if o.ApplicationRoleArn != "" {
		web := o.WebIdentityClient
		if web == nil {
			web = sts.NewFromConfig(o.Config.Copy(), func(so *sts.Options) {
				so.Credentials = aws.AnonymousCredentials{}
				so.TracerProvider = tp
			})
		}
		x.boot = newBootstrap(x, web)
	}
	return x, nil
}

// idleConnsPerHost is how many idle connections the clients New builds keep
// to each endpoint: enough for a burst of exchanges to reuse connections
// instead of opening (TLS) connections all at once; the SDK keeps 10.
const idleConnsPerHost = 128

// withIdleConns returns c, or the SDK's default client when c is nil, with
// at least idleConnsPerHost idle connections per host when it is the SDK's
// BuildableClient (a copy: c itself is not changed). Any other client is
// returned as it is.
//
// The copy dials without the SDK's dial tracing (WithDialerOptions sets the
// SDK's dialer itself). That tracing reads the span lineage of the
// request's context on the dialing goroutine, which net/http lets run on
// after the attempt took another connection, while smithy-go appends the
// operation's next span to the same lineage in place: a data race that the
// race detector reports. Only the dial's span properties (the peer's
// address) are lost.
func withIdleConns(c aws.HTTPClient) aws.HTTPClient {
	if c == nil {
		c = awshttp.NewBuildableClient()
	}
	b, ok := c.(*awshttp.BuildableClient)
	if !ok {
		return c
	}
	return b.WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConnsPerHost = max(tr.MaxIdleConnsPerHost, idleConnsPerHost)
		tr.MaxIdleConns = max(tr.MaxIdleConns, 2*idleConnsPerHost)
	}).WithDialerOptions()
}

// Exchange trades webToken, the user's OIDC token, for a new Session:
// CreateTokenWithIAM with the JWT bearer grant, then AssumeRole on the access
// role with the identity context (and, with an application role, its
// credentials first). A token is exchanged at most once: a token this
// Exchanger already sent fails with an error matching [ErrReauthenticate]
// before any call, as IAM Identity Center would refuse it; so does a token
// whose exp has passed.
func (x *Exchanger) Exchange(ctx context.Context, webToken string) (*Session, error) {
	s, err := x.exchange(ctx, webToken, nil)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// exchange is Exchange, except that when AssumeRole fails after
// CreateTokenWithIAM succeeded, it returns with the error the Session
// without credentials: the token is spent by then, and the identity
// context is what can still renew the user's credentials once STS answers
// again. A token that CreateTokenWithIAM refused as throttled is not
// counted as spent: a throttled request is not processed.
//
// cl, when not nil, claims the token in the Store before it is sent.
func (x *Exchanger) exchange(ctx context.Context, webToken string, cl *storeFlight) (*Session, error) {
	if webToken == "" {
		return nil, errNoToken
	}
	info := peek(webToken)
	if !info.expires.IsZero() && !x.o.Now().Before(info.expires) {
		return nil, errExpired
	}
	if x.spent.has(info, x.o.Now()) {
		return nil, errSpent
	}
	shape, err := x.shape(webToken)
	if err != nil {
		return nil, err
	}
	if x.boot != nil {
		if _, err := x.boot.credentials(ctx, webToken); err != nil {
			return nil, err
		}
	}
	if !x.spent.claim(info, x.o.Now()) {
		return nil, errSpent
	}
	if cl != nil && !cl.claim(ctx, info, spentUntil(info, x.o.Now())) {
		// Never sent from here: it is not this Exchanger's to remember.
		x.spent.release(info)
		return nil, errSpentElsewhere
	}
	s, err := x.createToken(ctx, &ssooidc.CreateTokenWithIAMInput{
		ClientId:  aws.String(x.o.ApplicationArn),
		GrantType: aws.String(grantJWTBearer),
		Assertion: aws.String(webToken),
	})
	if err != nil {
		if isThrottle(err) {
			x.spent.release(info)
			if cl != nil {
				cl.release(ctx, info)
			}
		}
		return nil, err
	}
	s.Issuer, s.Subject = info.issuer, info.subject
	s.SessionOptions = shape
	if _, err := x.assumeRole(ctx, s); err != nil {
		return s, err
	}
	return s, nil
}

// Tokens refused before any call: IAM Identity Center would refuse them.
var (
	errSpent   = &Error{kind: kindReauthenticate, Op: "Exchange", Code: "TokenAlreadyExchanged"}
	errExpired = &Error{kind: kindReauthenticate, Op: "Exchange", Code: "TokenExpired"}
	errNoToken = &Error{kind: kindReauthenticate, Op: "Exchange", Code: "NoToken"}
	// errSpentElsewhere: another replica sharing the Store exchanged it.
	errSpentElsewhere = &Error{kind: kindReauthenticate, Op: "Exchange", Code: "TokenExchangedElsewhere"}

	errNothingToRenewWith = &Error{kind: kindReauthenticate, Op: "Renew", Code: "NothingToRenewWith"}
)

// exchanged reports whether webToken was already sent to IAM Identity Center
// by this Exchanger (and so cannot buy another exchange).
func (x *Exchanger) exchanged(webToken string) bool {
	return x.spent.has(peek(webToken), x.o.Now())
}

// Renew returns a new Session for the user of s without spending a token
// when it can: AssumeRole again with the identity context while it is valid;
// else the refresh token grant when s has a refresh token; else an exchange
// of webToken (or, when webToken is empty, of the token from
// Options.WebTokenProvider) if that token was not exchanged before. When
// none applies, the error matches [ErrReauthenticate].
//
// With an application role, webToken (or the provider's token) also renews
// the application role's credentials when they expire; a token already
// exchanged still serves for that.
func (x *Exchanger) Renew(ctx context.Context, s *Session, webToken string) (*Session, error) {
	ns, err := x.renew(ctx, s, webToken, nil)
	if err != nil {
		return nil, err
	}
	return ns, nil
}

// renew is Renew, except that it may return with an error a Session whose
// new identity context AssumeRole could not use yet (see exchange); cl, when
// not nil, claims a token in the Store before it is sent.
func (x *Exchanger) renew(ctx context.Context, s *Session, webToken string, cl *storeFlight) (*Session, error) {
	if s == nil {
		return nil, &Error{kind: kindReauthenticate, Op: "Renew", Code: "NoSession"}
	}
	ctx = withToken(ctx, webToken)
	if s.IdentityContext != "" && x.o.Now().Add(contextMargin).Before(s.ContextExpires) {
		next := *s
		ns, err := x.assumeRole(ctx, &next)
		if !renewable(err) {
			return ns, err
		}
	}
	if s.RefreshToken != "" {
		ns, err := x.refresh(ctx, s)
		if !renewable(err) {
			return ns, err
		}
	}
	if webToken == "" && x.o.WebTokenProvider != nil {
		tok, err := x.o.WebTokenProvider(ctx)
		if err != nil {
			return nil, &Error{kind: kindReauthenticate, Op: "WebTokenProvider", Err: err}
		}
		webToken = tok
	}
	if webToken == "" || x.exchanged(webToken) || x.expired(webToken) {
		return nil, errNothingToRenewWith
	}
	return x.exchange(ctx, webToken, cl)
}

// refusedLocally returns the error with which renewing s (exchanging
// webToken when s is nil) is sure to fail before any call to AWS, or nil
// when a call may succeed: no identity context or refresh token is left
// to renew with, and webToken is missing, spent or expired.
func (x *Exchanger) refusedLocally(s *Session, webToken string, now time.Time) error {
	if s != nil {
		if s.IdentityContext != "" && now.Add(contextMargin).Before(s.ContextExpires) || s.RefreshToken != "" ||
			webToken == "" && x.o.WebTokenProvider != nil {
			return nil
		}
		if webToken == "" {
			return errNothingToRenewWith
		}
	}
	if webToken == "" {
		return errNoToken
	}
	info := peek(webToken)
	switch {
	case !info.expires.IsZero() && !now.Before(info.expires):
		return errExpired
	case x.spent.has(info, now):
		return errSpent
	}
	return nil
}

// expired reports whether token's exp has passed.
func (x *Exchanger) expired(token string) bool {
	exp := peek(token).expires
	return !exp.IsZero() && !x.o.Now().Before(exp)
}

// renewable reports whether a failed renewal step leaves the next one worth
// trying: the context or refresh token was refused as expired or spent.
func renewable(err error) bool {
	e, ok := err.(*Error)
	return ok && (e.kind == kindReauthenticate || e.kind == kindRefused && e.Op == "CreateTokenWithIAM")
}

// refresh renews s with the refresh token grant.
func (x *Exchanger) refresh(ctx context.Context, s *Session) (*Session, error) {
	ns, err := x.createToken(ctx, &ssooidc.CreateTokenWithIAMInput{
		ClientId:     aws.String(x.o.ApplicationArn),
		GrantType:    aws.String(grantRefreshToken),
		RefreshToken: aws.String(s.RefreshToken),
	})
	if err != nil {
		return nil, err
	}
	ns.Issuer, ns.Subject = s.Issuer, s.Subject
	ns.SessionOptions = s.SessionOptions
	if ns.RefreshToken == "" {
		ns.RefreshToken = s.RefreshToken
	}
	if ns.UserID == "" {
		ns.UserID, ns.IdentityStoreID = s.UserID, s.IdentityStoreID
	}
	if _, err := x.assumeRole(ctx, ns); err != nil {
		return ns, err
	}
	return ns, nil
}

// createToken calls CreateTokenWithIAM and returns a Session holding the
// identity context, its expiry and the refresh token.
func (x *Exchanger) createToken(ctx context.Context, in *ssooidc.CreateTokenWithIAMInput) (*Session, error) {
	start := x.o.Now()
	out, err := x.oidc.CreateTokenWithIAM(ctx, in, x.oidcOptions)
	if err != nil {
		return nil, classify("CreateTokenWithIAM", err)
	}
	id := readIDToken(out)
	if len(id.identityContext) < 4 || len(id.identityContext) > 2048 {
		return nil, &Error{kind: kindConfig, Op: "CreateTokenWithIAM", Code: "NoIdentityContext"}
	}
	// Cloned: a Session outlives the response, whose decoder keeps every
	// string of it (access and ID tokens too) in one shared buffer.
	return &Session{
		IdentityContext: strings.Clone(id.identityContext),
		ContextExpires:  start.Add(time.Duration(out.ExpiresIn) * time.Second),
		RefreshToken:    strings.Clone(aws.ToString(out.RefreshToken)),
		UserID:          strings.Clone(id.userID),
		IdentityStoreID: strings.Clone(id.identityStoreID),
	}, nil
}

// readIDToken reads the identity context of out, the awsAdditionalDetails
// field else the sts:identity_context claim of the ID token, and the
// user's IDs from the ID token.
func readIDToken(out *ssooidc.CreateTokenWithIAMOutput) idTokenInfo {
	info := idTokenClaims(aws.ToString(out.IdToken))
	if d := out.AwsAdditionalDetails; d != nil && aws.ToString(d.IdentityContext) != "" {
		info.identityContext = *d.IdentityContext
	}
	return info
}

// assumeRole fills s.Credentials through AssumeRole with s's identity
// context.
func (x *Exchanger) assumeRole(ctx context.Context, s *Session) (*Session, error) {
	name, err := x.sessionName(s)
	if err != nil {
		return nil, err
	}
	in := &sts.AssumeRoleInput{
		RoleArn:         aws.String(x.o.AccessRoleArn),
		RoleSessionName: aws.String(name),
		DurationSeconds: aws.Int32(int32(x.o.Duration / time.Second)),
		ProvidedContexts: []ststypes.ProvidedContext{{
			ProviderArn:      aws.String(contextProviderArn),
			ContextAssertion: aws.String(s.IdentityContext),
		}},
	}
	// Checked again: a Session may come from a Store or from a caller.
	if so := s.SessionOptions; so != nil {
		if err := so.check(); err != nil {
			return nil, err
		}
		so.applyTo(in)
	}
	out, err := x.sts.AssumeRole(ctx, in, x.stsOptions)
	if err != nil {
		return nil, classify("AssumeRole", err)
	}
	creds, err := credentialsOf(out.Credentials, "AssumeRole")
	if err != nil {
		return nil, err
	}
	s.Credentials = creds
	return s, nil
}

// credentialsOf converts STS credentials, refusing an incomplete answer.
func credentialsOf(c *ststypes.Credentials, op string) (aws.Credentials, error) {
	// An answer whose fields are present but empty (STS never sends one)
	// is as incomplete as one without them.
	if c == nil || aws.ToString(c.AccessKeyId) == "" || aws.ToString(c.SecretAccessKey) == "" || aws.ToString(c.SessionToken) == "" ||
		c.Expiration == nil || c.Expiration.IsZero() {
		return aws.Credentials{}, &Error{kind: kindUnavailable, Op: op, Code: "IncompleteCredentials"}
	}
	// Cloned to their exact size: the XML decoder's strings have the
	// spare capacity of the buffers they were built in.
	return aws.Credentials{
		AccessKeyID:     strings.Clone(*c.AccessKeyId),
		SecretAccessKey: strings.Clone(*c.SecretAccessKey),
		SessionToken:    strings.Clone(*c.SessionToken),
		Source:          "tipkit",
		CanExpire:       true,
		Expires:         *c.Expiration,
	}, nil
}

// sessionName returns the RoleSessionName for the user of s.
func (x *Exchanger) sessionName(s *Session) (string, error) {
	switch {
	case x.o.SessionNameFunc != nil:
		name := x.o.SessionNameFunc(s.Issuer, s.Subject)
		if !validSessionName(name) {
			return "", &Error{kind: kindConfig, Op: "AssumeRole", Code: "InvalidSessionName"}
		}
		return name, nil
	}
	return "tipkit-" + x.UserHash(UserKey{Issuer: s.Issuer, Subject: s.Subject}), nil
}

// oidcOptions tags a CreateTokenWithIAM call, bounds its attempts (see
// retryer) and, with an application role, signs it with the application
// role's credentials.
func (x *Exchanger) oidcOptions(o *ssooidc.Options) {
	o.APIOptions = append(o.APIOptions, useragent.Add)
	o.RetryMaxAttempts = x.o.MaxAttempts
	o.Retryer = retryer(o.Retryer)
	if x.boot != nil {
		o.Credentials = x.boot
	}
}

// stsOptions does for AssumeRole what oidcOptions does for CreateTokenWithIAM.
func (x *Exchanger) stsOptions(o *sts.Options) {
	o.APIOptions = append(o.APIOptions, useragent.Add)
	o.RetryMaxAttempts = x.o.MaxAttempts
	o.Retryer = retryer(o.Retryer)
	if x.boot != nil {
		o.Credentials = x.boot
	}
}
