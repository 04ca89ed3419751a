package exchange

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Provider is an aws.CredentialsProvider for a single identity: the user
// whose tokens Options.WebTokenProvider returns. It suits command-line
// tools and jobs; a server with many users keeps one [Exchanger] instead.
//
// Provider exchanges the first token on first use, then renews the
// credentials when they come within Options.CredentialsExpiryWindow of expiry, without
// the user's token while the identity context or a refresh token allows
// (see [Exchanger.Renew]). Concurrent callers share one renewal. It never
// returns expired credentials: when renewal fails and the credentials have
// expired, Retrieve returns the error.
//
// Set it as aws.Config.Credentials directly: it keeps the credentials
// itself. (config.WithCredentialsProvider wraps any provider in an
// aws.CredentialsCache; that second cache is harmless, and redundant.)
//
// Provider does not build on aws.NewCredentialsCache: that cache judges
// expiry by the SDK's own wall clock, not by Options.Now, so with an
// injected clock (tests, or a server sharing one clock between token checks
// and credentials) the two would disagree on when credentials expire; and
// a renewal here must keep the Session (identity context, refresh token),
// not only the credentials the cache holds.
type Provider struct {
	x *Exchanger
	r renewer[*Session]
}

var _ aws.CredentialsProvider = (*Provider)(nil)

// NewProvider validates o, which must include WebTokenProvider, and returns
// a Provider. No call is made until the first Retrieve.
func NewProvider(o Options) (*Provider, error) {
	if o.WebTokenProvider == nil {
		return nil, errWebTokenProvider
	}
	x, err := New(o)
	if err != nil {
		return nil, err
	}
	if x.boot != nil {
		x.boot.oneIdentity = true
	}
	return &Provider{x: x, r: renewer[*Session]{
		now: x.o.Now, window: x.o.CredentialsExpiryWindow,
		creds: func(s *Session) aws.Credentials {
			if s == nil {
				return aws.Credentials{}
			}
			return s.Credentials
		},
	}}, nil
}

// Retrieve returns the user's credentials, exchanging or renewing them when
// needed. It is safe for concurrent use.
func (p *Provider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	s, err := p.r.get(ctx, func(held *Session) (*Session, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
		defer cancel()
		if held == nil {
			return p.first(ctx)
		}
		return p.x.Renew(ctx, held, "")
	})
	if err != nil {
		return aws.Credentials{}, err
	}
	return s.Credentials, nil
}

// first exchanges the provider's current token.
func (p *Provider) first(ctx context.Context) (*Session, error) {
	token, err := p.x.o.WebTokenProvider(ctx)
	if err != nil {
		return nil, &Error{kind: kindReauthenticate, Op: "WebTokenProvider", Err: err}
	}
	return p.x.Exchange(ctx, token)
}
