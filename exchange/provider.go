package exchange

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"golang.org/x/sync/singleflight"
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

	mu    sync.Mutex
	sess  *Session
	group singleflight.Group
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
	return &Provider{x: x}, nil
}

// Retrieve returns the user's credentials, exchanging or renewing them when
// needed. It is safe for concurrent use.
func (p *Provider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	now := p.x.o.Now()
	p.mu.Lock()
	s := p.sess
	p.mu.Unlock()
	if s != nil && now.Before(s.Credentials.Expires.Add(-p.x.o.CredentialsExpiryWindow)) {
		return s.Credentials, nil
	}
	ch := p.group.DoChan("", func() (any, error) { return p.renew(ctx, s) })
	select {
	case r := <-ch:
		if r.Err == nil {
			return r.Val.(*Session).Credentials, nil
		}
		if s != nil && p.x.o.Now().Before(s.Credentials.Expires) {
			return s.Credentials, nil
		}
		return aws.Credentials{}, r.Err
	case <-ctx.Done():
		return aws.Credentials{}, &Error{kind: kindUnavailable, Op: "Retrieve", Err: ctx.Err()}
	}
}

// renew obtains the next session on a context detached from the caller's.
func (p *Provider) renew(ctx context.Context, s *Session) (*Session, error) {
	p.mu.Lock()
	cur := p.sess
	p.mu.Unlock()
	if cur != nil && cur != s && p.x.o.Now().Before(cur.Credentials.Expires.Add(-p.x.o.CredentialsExpiryWindow)) {
		// A renewal that ended after the caller looked obtained them.
		return cur, nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
	defer cancel()
	var (
		ns  *Session
		err error
	)
	if s == nil {
		ns, err = p.first(ctx)
	} else {
		ns, err = p.x.Renew(ctx, s, "")
	}
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.sess = ns
	p.mu.Unlock()
	return ns, nil
}

// first exchanges the provider's current token.
func (p *Provider) first(ctx context.Context) (*Session, error) {
	token, err := p.x.o.WebTokenProvider(ctx)
	if err != nil {
		return nil, &Error{kind: kindReauthenticate, Op: "WebTokenProvider", Err: err}
	}
	return p.x.Exchange(ctx, token)
}
