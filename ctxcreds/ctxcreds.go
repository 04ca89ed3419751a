// Package ctxcreds carries the calling user's AWS configuration and identity
// through a request's context.
//
// A server that acts on AWS as the user who calls it puts the user's
// identity-enhanced aws.Config and identity into the request context once
// the user's token is verified and exchanged: with [WithConfig] and
// [WithIdentity], or both at once with [WithCaller], as tipkit's
// middleware does. Handlers read them back with [Config] and
// [IdentityFrom], and hand the configuration to the client of a service
// that authorises the user of an identity-enhanced session, here Amazon Q
// Business:
//
//	cfg, ok := ctxcreds.Config(r.Context())
//	if !ok {
//		http.Error(w, "not signed in", http.StatusUnauthorized)
//		return
//	}
//	out, err := qbusiness.NewFromConfig(cfg).ChatSync(r.Context(), &qbusiness.ChatSyncInput{
//		ApplicationId: aws.String(appID),
//		UserMessage:   aws.String(r.FormValue("q")),
//	})
//
// S3 refuses an identity-enhanced session itself: it is reached with the
// credentials S3 Access Grants vends for the user's grants, which package
// github.com/tipkit/tipkit/accessgrants obtains from this configuration.
// [Identity.AWSUserID] is the user's ID in IAM Identity Center, the
// grantee those grants name.
//
// Reading either value never allocates.
package ctxcreds

import (
	"context"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/tipkit/tipkit/internal/tenantid"
)

// Unexported key types: no other package can read or overwrite these values
// except through the functions below.
type (
	configKey   struct{}
	identityKey struct{}
)

// WithConfig returns a copy of ctx that carries cfg, the AWS configuration
// whose credentials belong to the caller of the current request.
func WithConfig(ctx context.Context, cfg *aws.Config) context.Context {
	return context.WithValue(ctx, configKey{}, cfg)
}

// Config returns the caller's AWS configuration stored by [WithConfig] or
// [WithCaller], and whether there was one. The returned value is a copy
// whose slices (APIOptions, ConfigSources, AuthSchemePreference,
// ServiceOptions and those of Interceptors) have no spare capacity, so
// that appending to them, as cfg.APIOptions = append(cfg.APIOptions, ...)
// or cfg.Interceptors.AddBeforeSigning(...) do, gives the caller a new
// array and changes nothing for other readers of ctx nor for other
// callers of the same base configuration. The elements of those slices,
// and what BaseEndpoint and the configuration's other pointers point at,
// are shared: they must not be modified in place.
func Config(ctx context.Context) (aws.Config, bool) {
	var cfg aws.Config
	switch v := ctx.Value(configKey{}).(type) {
	case *aws.Config:
		if v == nil {
			return aws.Config{}, false
		}
		cfg = *v
	case *callerCtx:
		if v.base == nil {
			return aws.Config{}, false
		}
		cfg = *v.base
		cfg.Credentials = v.creds
	default:
		return aws.Config{}, false
	}
	clipSlices(&cfg)
	return cfg, true
}

// clipSlices removes the spare capacity of every slice of cfg, so that an
// append to one of them cannot write into an array that cfg shares with
// the configuration it was copied from.
func clipSlices(cfg *aws.Config) {
	cfg.ConfigSources = slices.Clip(cfg.ConfigSources)
	cfg.APIOptions = slices.Clip(cfg.APIOptions)
	cfg.AuthSchemePreference = slices.Clip(cfg.AuthSchemePreference)
	cfg.ServiceOptions = slices.Clip(cfg.ServiceOptions)
	i := &cfg.Interceptors
	i.BeforeExecution = slices.Clip(i.BeforeExecution)
	i.BeforeSerialization = slices.Clip(i.BeforeSerialization)
	i.AfterSerialization = slices.Clip(i.AfterSerialization)
	i.BeforeRetryLoop = slices.Clip(i.BeforeRetryLoop)
	i.BeforeAttempt = slices.Clip(i.BeforeAttempt)
	i.BeforeSigning = slices.Clip(i.BeforeSigning)
	i.AfterSigning = slices.Clip(i.AfterSigning)
	i.BeforeTransmit = slices.Clip(i.BeforeTransmit)
	i.AfterTransmit = slices.Clip(i.AfterTransmit)
	i.BeforeDeserialization = slices.Clip(i.BeforeDeserialization)
	i.AfterDeserialization = slices.Clip(i.AfterDeserialization)
	i.AfterAttempt = slices.Clip(i.AfterAttempt)
	i.AfterExecution = slices.Clip(i.AfterExecution)
}

// WithCaller returns a copy of ctx that carries the caller's AWS
// configuration, base with its Credentials replaced by creds, and the
// caller's identity, as [WithConfig] and [WithIdentity] would, in one
// allocation instead of two and without copying base: [Config] composes
// the configuration when it is read. base must not change afterwards.
// The middleware calls it on every request.
func WithCaller(ctx context.Context, base *aws.Config, creds aws.CredentialsProvider, id Identity) context.Context {
	return &callerCtx{Context: ctx, base: base, creds: creds, id: id}
}

// callerCtx is a context holding the values of both keys; any other key,
// and cancellation, come from its parent.
type callerCtx struct {
	context.Context
	base  *aws.Config
	creds aws.CredentialsProvider
	id    Identity
}

// Value returns c itself for the configuration key, the identity for
// its key, and asks the parent context for any other key.
func (c *callerCtx) Value(key any) any {
	switch key.(type) {
	case configKey:
		return c
	case identityKey:
		return c.id
	}
	return c.Context.Value(key)
}

// String names the context in the way the context package's own do.
func (c *callerCtx) String() string { return "ctxcreds.WithCaller" }

// Identity describes the verified caller of a request. It is a small
// value that points at data no one can change once [NewIdentity] made it:
// the fields are reached through methods, and the claims through copies,
// and a handler that assigns to its Identity changes its own copy only,
// so that no handler can change what later requests of the same caller
// see (the middleware hands the same Identity to every request of a
// token). Identities compare equal (==) when one call of NewIdentity made
// both. The zero Identity names no one: its methods return zero values.
type Identity struct{ p *identity }

// identity is what an Identity points at, never modified after
// NewIdentity.
type identity struct {
	issuer, subject string
	claims          map[string]any
	expires         time.Time
	user            AWSUser
	tenant          string
}

func init() {
	tenantid.With = func(id any, tenant string) any {
		c := *id.(Identity).d()
		c.tenant = tenant
		return Identity{&c}
	}
}

// noIdentity is what the zero Identity reads as.
var noIdentity identity

// d returns what id points at, or noIdentity for the zero Identity.
func (id Identity) d() *identity {
	if id.p == nil {
		return &noIdentity
	}
	return id.p
}

// AWSUser names the caller's user in AWS IAM Identity Center, as Identity
// Center told it when it exchanged the caller's token: the IDs that AWS
// services know the user by, where the issuer and subject are the
// identity provider's names.
type AWSUser struct {
	// UserID is the user's ID in the identity store (a GUID): the grantee
	// of the user's S3 access grants (DIRECTORY_USER), the user of
	// identitystore DescribeUser.
	UserID string
	// IdentityStoreID is the ID of the identity store ("d-" and 10
	// hexadecimal digits).
	IdentityStoreID string
}

// NewIdentity returns the identity of the user named by issuer and subject
// (the iss and sub claims of the user's verified token), with the token's
// verified claims, whose AWS credentials expire at expires (the zero time
// when none were obtained) and who is user in IAM Identity Center (the
// zero AWSUser when unknown). NewIdentity keeps claims, not a copy: the
// caller must not modify claims afterwards.
func NewIdentity(issuer, subject string, claims map[string]any, expires time.Time, user AWSUser) Identity {
	return Identity{&identity{issuer: issuer, subject: subject, claims: claims, expires: expires, user: user}}
}

// Issuer returns the iss claim of the caller's verified token.
func (id Identity) Issuer() string { return id.d().issuer }

// Subject returns the sub claim of the caller's verified token. Together
// with Issuer it names one user.
func (id Identity) Subject() string { return id.d().subject }

// Expires returns when the caller's AWS credentials expire; the zero time
// when no credentials were obtained.
func (id Identity) Expires() time.Time { return id.d().expires }

// Tenant returns the name of the caller's tenant: the customer, among
// those a server serves, whose identity provider issued the caller's token
// and whose IAM Identity Center exchanged it (tipkit's middleware names
// it after its Options.Tenants). It is "" for a server that serves one
// tenant.
func (id Identity) Tenant() string { return id.d().tenant }

// AWSUserID returns the caller's user ID in IAM Identity Center's identity
// store (AWSUser.UserID), or "" when unknown. It is read, unverified, from
// the token IAM Identity Center returned with the caller's credentials.
func (id Identity) AWSUserID() string { return id.d().user.UserID }

// IdentityStoreID returns the ID of the identity store of the caller's
// user (AWSUser.IdentityStoreID), or "" when unknown.
func (id Identity) IdentityStoreID() string { return id.d().user.IdentityStoreID }

// Claim returns the verified claim name of the caller's token, as decoded
// from JSON (a number is a float64, an array a []any, an object a
// map[string]any), and whether the token has it. An array or object is a
// copy: changing it changes nothing for anyone else.
func (id Identity) Claim(name string) (any, bool) {
	v, ok := id.d().claims[name]
	return copyJSON(v), ok
}

// StringClaim returns the claim name when it is a string, else "".
func (id Identity) StringClaim(name string) string {
	s, _ := id.d().claims[name].(string)
	return s
}

// Claims returns a copy of every verified claim of the caller's token;
// nil for the zero Identity.
func (id Identity) Claims() map[string]any {
	if id.p == nil {
		return nil
	}
	return copyJSON(id.p.claims).(map[string]any)
}

// copyJSON returns a deep copy of a value decoded from JSON.
func copyJSON(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = copyJSON(e)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, e := range v {
			s[i] = copyJSON(e)
		}
		return s
	}
	return v
}

// WithIdentity returns a copy of ctx that carries id. The zero Identity is
// stored as no identity.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityFrom returns the identity stored by [WithIdentity] or
// [WithCaller], and whether there was one (the zero Identity, false,
// when there was none). What it points at cannot change, so it may be
// shared between requests.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, _ := ctx.Value(identityKey{}).(Identity)
	return id, id.p != nil
}
