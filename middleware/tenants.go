package middleware

import (
	"context"
	"fmt"
	"reflect"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/tipkit/tipkit/ctxcreds"
	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/internal/tenantid"
	"github.com/tipkit/tipkit/verify"
)

// Tenant is one customer of a server that serves several (Options.Tenants),
// each with its own identity provider and its own IAM Identity Center
// instance: its own region, application and roles.
//
// A token's iss picks its tenant, and the tenant's Issuers verify it: keys
// are fetched per issuer, so a token signed by one tenant's identity
// provider that claims another tenant's iss fails its signature check and
// is answered 401, with no AWS call. Users are keyed by tenant as well as
// by issuer and subject: the same subject in two tenants is two users,
// each exchanged at its own tenant's IAM Identity Center, held, renewed
// and stored apart.
type Tenant struct {
	// Name names the tenant to handlers (ctxcreds.Identity.Tenant) and in
	// the Store's namespace of its sessions. It holds no secret and names
	// no user. Default: the tenant's index in Options.Tenants, in decimal
	// ("0", "1", ...). Two tenants may not share a name.
	Name string
	// Issuers lists the trusted issuers of the tenant's tokens, as
	// verify.Options.Issuers does; at least one. An issuer belongs to one
	// tenant only.
	Issuers []verify.Issuer
	// Exchange configures the tenant's exchange, as Options.Exchange does
	// for a single tenant: its IAM Identity Center application, its roles,
	// and its AWS configuration (Exchange.Config, in the region of its
	// Identity Center instance). Its Now, TracerProvider and
	// WebTokenProvider must be nil: the clock and the telemetry are
	// Options' own, for every tenant.
	Exchange exchange.Options
	// AWSConfig is the base of the aws.Config of each of the tenant's users,
	// as Options.AWSConfig is for a single tenant. When its Region is
	// empty, New takes Exchange.Config.Region.
	AWSConfig aws.Config
}

// tenant is a Tenant as New built it.
type tenant struct {
	name  string // "" for the single tenant of Options.Issuer, Options.Exchange...
	x     *exchange.Exchanger
	cache *exchange.Cache
	// awsConfig is the base of each user's aws.Config; it never changes
	// once New returns, since each request's context points at it.
	awsConfig aws.Config
}

// tenantsOf returns the tenants of o: Options.Tenants, or the one tenant
// of the top-level fields (Issuer, Audience, Verify.Issuers, Exchange,
// AWSConfig), whose name is "".
func tenantsOf(o *Options) ([]Tenant, error) {
	if len(o.Tenants) == 0 {
		t := Tenant{Issuers: o.Verify.Issuers, Exchange: o.Exchange, AWSConfig: o.AWSConfig}
		if o.Issuer != "" || len(o.Audience) > 0 {
			t.Issuers = append([]verify.Issuer{{Issuer: o.Issuer, Audience: o.Audience}}, t.Issuers...)
		}
		if t.AWSConfig.Region == "" {
			if t.AWSConfig.Region = t.Exchange.Config.Region; t.AWSConfig.Region == "" {
				// Every AWS call of a handler would fail with "Missing Region".
				return nil, &configError{"AWSConfig.Region (or Exchange.Config.Region) is required"}
			}
		}
		return []Tenant{t}, nil
	}
	for _, top := range []struct {
		name string
		set  bool
	}{
		{"Issuer", o.Issuer != ""}, {"Audience", len(o.Audience) > 0}, {"Verify.Issuers", len(o.Verify.Issuers) > 0},
		{"Exchange", !reflect.ValueOf(o.Exchange).IsZero()}, {"AWSConfig", !reflect.ValueOf(o.AWSConfig).IsZero()},
	} {
		if top.set {
			return nil, &configError{top.name + " and Tenants are both set: with Tenants, each tenant has its own issuers, exchange and AWSConfig (Tenant.Issuers, Tenant.Exchange, Tenant.AWSConfig)"}
		}
	}
	ts := make([]Tenant, len(o.Tenants))
	names := make(map[string]int, len(ts))
	issuers := make(map[string]int)
	for i, t := range o.Tenants {
		field := "Tenants[" + strconv.Itoa(i) + "]"
		if t.Name == "" {
			t.Name = strconv.Itoa(i)
		}
		if j, ok := names[t.Name]; ok {
			return nil, &configError{fmt.Sprintf("Tenants[%d] and %s are both named %q: a tenant's Name must be its own", j, field, t.Name)}
		}
		names[t.Name] = i
		if len(t.Issuers) == 0 {
			return nil, &configError{field + ".Issuers is empty: a tenant needs at least one issuer"}
		}
		for _, is := range t.Issuers {
			if j, ok := issuers[is.Issuer]; ok {
				return nil, &configError{fmt.Sprintf("issuer %q is listed in Tenants[%d] and %s: an issuer belongs to one tenant", is.Issuer, j, field)}
			}
			issuers[is.Issuer] = i
		}
		for _, owned := range []struct {
			name string
			set  bool
		}{
			{"Now", t.Exchange.Now != nil}, {"TracerProvider", t.Exchange.TracerProvider != nil}, {"WebTokenProvider", t.Exchange.WebTokenProvider != nil},
		} {
			if owned.set {
				return nil, &configError{field + ".Exchange." + owned.name + " must be nil: the clock and the telemetry are Options' own, for every tenant, and each user's credentials are obtained with that user's own tokens"}
			}
		}
		if t.AWSConfig.Region == "" {
			if t.AWSConfig.Region = t.Exchange.Config.Region; t.AWSConfig.Region == "" {
				return nil, &configError{field + ".AWSConfig.Region (or " + field + ".Exchange.Config.Region) is required"}
			}
		}
		ts[i] = t
	}
	return ts, nil
}

// newTenant builds the exchange and the Cache of t, the index-th tenant of
// o.
func newTenant(o *Options, t Tenant, index int) (*tenant, error) {
	field := "Exchange"
	if len(o.Tenants) > 0 {
		field = "Tenants[" + strconv.Itoa(index) + "].Exchange"
	}
	xo := t.Exchange
	xo.Now, xo.TracerProvider = o.Now, o.TracerProvider
	x, err := exchange.New(xo)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrConfig, field, err)
	}
	co := o.Cache
	co.Logger, co.MeterProvider = o.Logger, o.MeterProvider
	name := ""
	if len(o.Tenants) > 0 {
		name = t.Name
		if co.Store != nil {
			co.Store = tenantStore{co.Store, t.Name}
		}
	}
	cache, err := exchange.NewCache(x, co)
	if err != nil {
		return nil, fmt.Errorf("%w: Cache: %w", ErrConfig, err)
	}
	return &tenant{name: name, x: x, cache: cache, awsConfig: t.AWSConfig}, nil
}

// tenantStore is the Store of one of several tenants: its keys' namespace
// (the exchange's, a hex hash) is followed by the tenant's name, so that
// tenants sharing one Store never read each other's entries, even with
// one application, access role and region.
type tenantStore struct {
	exchange.Store
	tenant string
}

func (s tenantStore) key(k exchange.StoreKey) exchange.StoreKey {
	k.Namespace += "/" + s.tenant
	return k
}

func (s tenantStore) Load(ctx context.Context, key exchange.StoreKey) (*exchange.Session, error) {
	return s.Store.Load(ctx, s.key(key))
}

func (s tenantStore) Save(ctx context.Context, key exchange.StoreKey, sess *exchange.Session) error {
	return s.Store.Save(ctx, s.key(key), sess)
}

func (s tenantStore) ClaimToken(ctx context.Context, key exchange.StoreKey, id, claim string, until time.Time) (bool, error) {
	return s.Store.ClaimToken(ctx, s.key(key), id, claim, until)
}

func (s tenantStore) ReleaseToken(ctx context.Context, key exchange.StoreKey, id, claim string) error {
	return s.Store.ReleaseToken(ctx, s.key(key), id, claim)
}

func (s tenantStore) Acquire(ctx context.Context, key exchange.StoreKey, lease string, ttl time.Duration) (bool, error) {
	return s.Store.Acquire(ctx, s.key(key), lease, ttl)
}

func (s tenantStore) Release(ctx context.Context, key exchange.StoreKey, lease string) error {
	return s.Store.Release(ctx, s.key(key), lease)
}

// tenantOf returns the tenant of the verified claims c, whose memo (nil
// when none) holds it once a request of the token was served.
func (m *Middleware) tenantOf(c *verify.Claims, memo *identityMemo) *tenant {
	switch {
	case len(m.tenants) == 1:
		return m.tenants[0]
	case memo != nil:
		return memo.tenant
	}
	return m.byIssuer[c.Issuer]
}

// withTenant returns id naming the tenant t, when the middleware serves
// several.
func withTenant(id ctxcreds.Identity, t *tenant) ctxcreds.Identity {
	if t.name == "" {
		return id
	}
	return tenantid.With(id, t.name).(ctxcreds.Identity)
}
