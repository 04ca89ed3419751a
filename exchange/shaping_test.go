package exchange_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/redis/go-redis/v9"

	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/internal/seal"
	"github.com/tipkit/tipkit/redisstore"
	"github.com/tipkit/tipkit/tiptest"
)

// tenantShape is the hook of a tenant whose users reach an Amazon Q
// Business data accessor: its external ID, the user's email as a
// transitive tag, and the user as source identity. It counts its calls.
type tenantShape struct {
	calls  atomic.Int32
	claims sync.Map // sub => the claims the hook was given
}

const shapePolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"s3:PutObject","Resource":"*"}]}`

func (h *tenantShape) hook(claims map[string]any) (exchange.SessionOptions, error) {
	h.calls.Add(1)
	email, _ := claims["email"].(string)
	sub, _ := claims["sub"].(string)
	h.claims.Store(sub, claims)
	return exchange.SessionOptions{
		Tags:              map[string]string{"qbusiness-dataaccessor:ExternalId": "tenant-a-external-id", "email": email},
		TransitiveTagKeys: []string{"email"},
		SourceIdentity:    sub,
		Policy:            shapePolicy,
	}, nil
}

// wantShaped checks that tiptest reports the session of creds as shaped
// by tenantShape for user.
func wantShaped(t *testing.T, env *tiptest.Env, creds aws.Credentials, user string) {
	t.Helper()
	info, ok := env.AWS.Session(creds.AccessKeyID)
	want := map[string]string{"qbusiness-dataaccessor:ExternalId": "tenant-a-external-id", "email": user + "@example.com"}
	if !ok || info.User != user || !maps.Equal(info.Tags, want) || !slices.Equal(info.TransitiveTagKeys, []string{"email"}) ||
		info.SourceIdentity != user || info.Policy != shapePolicy {
		t.Fatalf("session of %s carries %+v (known: %v), want the tags %v and source identity %q", creds.AccessKeyID, info, ok, want, user)
	}
}

func TestSessionShapedOnExchangeAndRenewal(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			env := tiptest.New(t)
			var h tenantShape
			x := newExchanger(t, env, m.appRole, func(o *exchange.Options) { o.Session = h.hook })
			ctx := context.Background()
			s, err := x.Exchange(ctx, env.IdP.Token("alice"))
			if err != nil {
				t.Fatal(err)
			}
			wantShaped(t, env, s.Credentials, "alice")
			if s.SessionOptions.SourceIdentity != "alice" || s.SessionOptions.Tags["email"] != "alice@example.com" {
				t.Fatalf("Session.SessionOptions = %+v", s.SessionOptions)
			}

			// 30 minutes later: AssumeRole again with the identity context,
			// the same shape, without calling the hook (there is no token).
			env.Clock.Advance(30 * time.Minute)
			r, err := x.Renew(ctx, s, "")
			if err != nil {
				t.Fatal(err)
			}
			if r.Credentials.AccessKeyID == s.Credentials.AccessKeyID {
				t.Fatal("Renew returned the same credentials")
			}
			wantShaped(t, env, r.Credentials, "alice")
			if n := h.calls.Load(); n != 1 {
				t.Fatalf("the hook was called %d times, want once (at the exchange)", n)
			}
			web := 0
			if m.appRole {
				web = 1
			}
			wantCalls(t, env, web, 1, 2)
		})
	}
}

// The hook is given the verified token's claims, decoded once per
// exchange: strings, numbers as float64, arrays and objects.
func TestSessionHookClaims(t *testing.T) {
	env := tiptest.New(t)
	var h tenantShape
	x := newExchanger(t, env, false, func(o *exchange.Options) { o.Session = h.hook })
	tok := env.IdP.Token("alice", tiptest.WithClaims(map[string]any{"groups": []string{"analysts", "admins"}, "tenant": map[string]any{"id": "a"}}))
	if _, err := x.Exchange(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	v, ok := h.claims.Load("alice")
	if !ok {
		t.Fatal("the hook was not given alice's claims")
	}
	claims := v.(map[string]any)
	groups, _ := claims["groups"].([]any)
	tenant, _ := claims["tenant"].(map[string]any)
	exp, _ := claims["exp"].(float64)
	if claims["iss"] != env.IdP.Issuer() || claims["email"] != "alice@example.com" || len(groups) != 2 || groups[0] != "analysts" ||
		tenant["id"] != "a" || int64(exp) != env.Clock.Now().Add(time.Hour).Unix() {
		t.Fatalf("claims %v", claims)
	}
}

// Through a Cache: the hook shapes the exchange; renewals 30 minutes later
// by AssumeRole with the identity context, then by the refresh token once
// the context expired, keep the shape without calling the hook again.
func TestCacheSessionShapeRenewals(t *testing.T) {
	env := tiptest.New(t, tiptest.WithRefreshGrant(), tiptest.WithTokenTTL(40*time.Minute))
	var h tenantShape
	x := newExchanger(t, env, false, func(o *exchange.Options) { o.Session = h.hook })
	c := newCache(t, env, x)
	ctx := context.Background()
	tok := env.IdP.Token("alice")
	p, _, err := c.Credentials(ctx, key(env, "alice"), tok)
	if err != nil {
		t.Fatal(err)
	}
	_, first := owner(t, env, p)
	wantShaped(t, env, first, "alice")

	env.Clock.Advance(30 * time.Minute) // the credentials (15 minutes) expired, the identity context (40) is valid
	p, _, err = c.Credentials(ctx, key(env, "alice"), tok)
	if err != nil {
		t.Fatal(err)
	}
	_, second := owner(t, env, p)
	if second.AccessKeyID == first.AccessKeyID {
		t.Fatal("not renewed")
	}
	wantShaped(t, env, second, "alice")
	wantCalls(t, env, 0, 1, 2) // AssumeRole with the identity context

	env.Clock.Advance(30 * time.Minute) // the identity context expired too: the refresh token renews
	p, _, err = c.Credentials(ctx, key(env, "alice"), tok)
	if err != nil {
		t.Fatal(err)
	}
	_, third := owner(t, env, p)
	wantShaped(t, env, third, "alice")
	wantCalls(t, env, 0, 2, 3) // the refresh grant, then AssumeRole
	if n := h.calls.Load(); n != 1 {
		t.Fatalf("the hook was called %d times, want once", n)
	}
}

// memStore is a Store in memory that keeps sessions as the stores seal
// them (the encoding of internal/seal), so that a session it returns went
// through the same round trip as in Redis or DynamoDB.
type memStore struct {
	mu       sync.Mutex
	sessions map[exchange.StoreKey][]byte
	marks    map[string]string
	leases   map[exchange.StoreKey]string
}

func newMemStore() *memStore {
	return &memStore{sessions: map[exchange.StoreKey][]byte{}, marks: map[string]string{}, leases: map[exchange.StoreKey]string{}}
}

func (m *memStore) Load(_ context.Context, k exchange.StoreKey) (*exchange.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.sessions[k]
	if !ok {
		return nil, nil
	}
	s, _ := seal.DecodeSession(b)
	return s, nil
}

func (m *memStore) Save(_ context.Context, k exchange.StoreKey, s *exchange.Session) error {
	b, err := seal.EncodeSession(s)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sessions[k] = b
	return nil
}

func (m *memStore) ClaimToken(_ context.Context, k exchange.StoreKey, id, claim string, _ time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	name := k.Namespace + "\x00" + id
	if v, ok := m.marks[name]; ok {
		return v == claim, nil
	}
	m.marks[name] = claim
	return true, nil
}

func (m *memStore) ReleaseToken(_ context.Context, k exchange.StoreKey, id, claim string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	name := k.Namespace + "\x00" + id
	if m.marks[name] == claim {
		delete(m.marks, name)
	}
	return nil
}

func (m *memStore) Acquire(_ context.Context, k exchange.StoreKey, lease string, _ time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.leases[k]; ok {
		return v == lease, nil
	}
	m.leases[k] = lease
	return true, nil
}

func (m *memStore) Release(_ context.Context, k exchange.StoreKey, lease string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.leases[k] == lease {
		delete(m.leases, k)
	}
	return nil
}

// A session loaded from the Store by another replica is renewed with the
// shape it was exchanged with: that replica's hook is never called.
func TestCacheSessionShapeFromStore(t *testing.T) {
	env := tiptest.New(t)
	store := newMemStore()
	var ha, hb tenantShape
	a := newCache(t, env, newExchanger(t, env, false, func(o *exchange.Options) { o.Session = ha.hook }),
		func(o *exchange.CacheOptions) { o.Store = store })
	b := newCache(t, env, newExchanger(t, env, false, func(o *exchange.Options) { o.Session = hb.hook }),
		func(o *exchange.CacheOptions) { o.Store = store })
	ctx := context.Background()
	tok := env.IdP.Token("alice")
	p, _, err := a.Credentials(ctx, key(env, "alice"), tok)
	if err != nil {
		t.Fatal(err)
	}
	_, first := owner(t, env, p)
	wantShaped(t, env, first, "alice")

	env.Clock.Advance(25 * time.Minute)
	p, _, err = b.Credentials(ctx, key(env, "alice"), tok)
	if err != nil {
		t.Fatal(err)
	}
	_, renewed := owner(t, env, p)
	if renewed.AccessKeyID == first.AccessKeyID {
		t.Fatal("replica b served expired credentials")
	}
	wantShaped(t, env, renewed, "alice")
	wantCalls(t, env, 0, 1, 2)
	if ha.calls.Load() != 1 || hb.calls.Load() != 0 {
		t.Fatalf("hooks called %d and %d times, want 1 and 0", ha.calls.Load(), hb.calls.Load())
	}
	if st := b.Stats(); st.Renewals != 1 || st.Exchanges != 0 {
		t.Fatalf("replica b: %+v", st)
	}
}

// An error of the hook refuses the user before any AWS call, with an
// error matching ErrRefused that hides the hook's text; the Cache
// remembers it for that token, and logs the hook's error.
func TestSessionHookErrorRefuses(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			env := tiptest.New(t)
			hookErr := errors.New("user not in tenant-a")
			var calls atomic.Int32
			x := newExchanger(t, env, m.appRole, func(o *exchange.Options) {
				o.Session = func(map[string]any) (exchange.SessionOptions, error) {
					calls.Add(1)
					return exchange.SessionOptions{}, hookErr
				}
			})
			_, err := x.Exchange(context.Background(), env.IdP.Token("alice"))
			var xe *exchange.Error
			if !errors.Is(err, exchange.ErrRefused) || !errors.Is(err, hookErr) || !errors.As(err, &xe) || xe.Op != "Session" {
				t.Fatalf("Exchange: %v, want the hook's refusal", err)
			}
			if strings.Contains(err.Error(), "tenant-a") {
				t.Fatalf("the message %q shows the hook's error", err)
			}
			wantCalls(t, env, 0, 0, 0)

			var logs bytes.Buffer
			c := newCache(t, env, x, func(o *exchange.CacheOptions) {
				o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			})
			tok := env.IdP.Token("alice")
			for range 3 {
				if _, _, err := c.Credentials(context.Background(), key(env, "alice"), tok); !errors.Is(err, exchange.ErrRefused) {
					t.Fatalf("Credentials: %v", err)
				}
			}
			if n := calls.Load(); n != 2 {
				t.Fatalf("the hook was called %d times, want 2: the Cache remembers its refusal of a token", n)
			}
			// A fresh token of the user is tried at once.
			if _, _, err := c.Credentials(context.Background(), key(env, "alice"), env.IdP.Token("alice")); !errors.Is(err, exchange.ErrRefused) || calls.Load() != 3 {
				t.Fatalf("fresh token: %v, hook calls %d", err, calls.Load())
			}
			wantCalls(t, env, 0, 0, 0)
			if !strings.Contains(logs.String(), "session_error=\"user not in tenant-a\"") || strings.Contains(logs.String(), "alice") {
				t.Fatalf("logs:\n%s", logs.String())
			}
		})
	}
}

// What STS would refuse is refused before any call, with an error
// matching ErrConfig that names the field and the rule, never the value.
func TestSessionOptionsValidation(t *testing.T) {
	const secret = "VALUE-FROM-A-CLAIM"
	many := func(n int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m[string(rune('a'+i%26))+strings.Repeat("k", i/26+1)] = "v"
		}
		return m
	}
	arns := func(n int) []string {
		var out []string
		for range n {
			out = append(out, "arn:aws:iam::123456789012:policy/"+secret)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		shape exchange.SessionOptions
		field string
	}{
		{"51 tags", exchange.SessionOptions{Tags: many(51)}, "Tags"},
		{"key of 129 characters", exchange.SessionOptions{Tags: map[string]string{strings.Repeat("k", 129-len(secret)) + secret: "v"}}, "Tags"},
		{"value of 257 characters", exchange.SessionOptions{Tags: map[string]string{"k": strings.Repeat("v", 257-len(secret)) + secret}}, "Tags"},
		{"empty key", exchange.SessionOptions{Tags: map[string]string{"": secret}}, "Tags"},
		{"value with a comma", exchange.SessionOptions{Tags: map[string]string{"k": secret + ",x"}}, "Tags"},
		{"aws: key", exchange.SessionOptions{Tags: map[string]string{"aws:" + secret: "v"}}, "Tags"},
		{"keys differing by case", exchange.SessionOptions{Tags: map[string]string{secret: "a", strings.ToLower(secret): "b"}}, "Tags"},
		{"transitive key not a tag", exchange.SessionOptions{Tags: map[string]string{"k": "v"}, TransitiveTagKeys: []string{secret}}, "TransitiveTagKeys"},
		{"source identity with a space", exchange.SessionOptions{SourceIdentity: secret + " x"}, "SourceIdentity"},
		{"source identity of 1 character", exchange.SessionOptions{SourceIdentity: "a"}, "SourceIdentity"},
		{"source identity of 65 characters", exchange.SessionOptions{SourceIdentity: strings.Repeat("a", 65-len(secret)) + secret}, "SourceIdentity"},
		{"aws: source identity", exchange.SessionOptions{SourceIdentity: "aws:" + secret}, "SourceIdentity"},
		{"policy not JSON", exchange.SessionOptions{Policy: `{"Statement":"` + secret}, "Policy"},
		{"policy too large", exchange.SessionOptions{Policy: `{"Sid":"` + strings.Repeat("x", 2048) + secret + `"}`}, "Policy"},
		{"policy with a control character", exchange.SessionOptions{Policy: "{\"Sid\":\"" + secret + "\x01\"}"}, "Policy"},
		{"11 policy ARNs", exchange.SessionOptions{PolicyArns: arns(11)}, "PolicyArns"},
		{"not an ARN", exchange.SessionOptions{PolicyArns: []string{secret}}, "PolicyArns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := tiptest.New(t)
			x := newExchanger(t, env, true, func(o *exchange.Options) {
				o.Session = func(map[string]any) (exchange.SessionOptions, error) { return tc.shape, nil }
			})
			_, err := x.Exchange(context.Background(), env.IdP.Token("alice"))
			var xe *exchange.Error
			if !errors.Is(err, exchange.ErrConfig) || !errors.As(err, &xe) || xe.Op != "Session" ||
				!strings.Contains(err.Error(), "SessionOptions."+tc.field+":") {
				t.Fatalf("Exchange: %v, want an ErrConfig naming SessionOptions.%s", err, tc.field)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(strings.ToLower(err.Error()), strings.ToLower(secret)) {
				t.Fatalf("the error %q shows the value", err)
			}
			wantCalls(t, env, 0, 0, 0)
		})
	}
}

// Tags the access role's trust policy does not allow (no sts:TagSession):
// STS refuses the user with AccessDenied, which the Cache answers from
// memory for RefusedTTL, even for a fresh token of the user.
func TestSessionTagsRefusedByTrustPolicy(t *testing.T) {
	env := tiptest.New(t)
	if err := env.AWS.Configure(func(s *tiptest.Setup) { s.AccessRoleTagSession = false }); err != nil {
		t.Fatal(err)
	}
	var h tenantShape
	c := newCache(t, env, newExchanger(t, env, false, func(o *exchange.Options) { o.Session = h.hook }),
		func(o *exchange.CacheOptions) { o.RefusedTTL = time.Minute })
	ctx := context.Background()
	_, _, err := c.Credentials(ctx, key(env, "alice"), env.IdP.Token("alice"))
	var xe *exchange.Error
	if !errors.Is(err, exchange.ErrRefused) || !errors.As(err, &xe) || xe.Op != "AssumeRole" || xe.Code != "AccessDenied" {
		t.Fatalf("Credentials: %v, want AssumeRole's AccessDenied", err)
	}
	wantCalls(t, env, 0, 1, 1)
	_, _, err = c.Credentials(ctx, key(env, "alice"), env.IdP.Token("alice"))
	if !errors.Is(err, exchange.ErrRefused) {
		t.Fatalf("within RefusedTTL: %v", err)
	}
	wantCalls(t, env, 0, 1, 1)

	// Mended, and RefusedTTL later, a fresh token is exchanged.
	if err := env.AWS.Configure(func(s *tiptest.Setup) { s.AccessRoleTagSession = true }); err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(time.Minute)
	p, _, err := c.Credentials(ctx, key(env, "alice"), env.IdP.Token("alice"))
	if err != nil {
		t.Fatal(err)
	}
	_, creds := owner(t, env, p)
	wantShaped(t, env, creds, "alice")
}

// A hook that returns nothing to pass leaves the session unshaped; a
// Session whose SessionOptions STS would refuse (changed by its holder,
// say) is refused before AssumeRole when it is renewed.
func TestSessionUnshapedAndRecheckedOnRenewal(t *testing.T) {
	env := tiptest.New(t)
	x := newExchanger(t, env, false, func(o *exchange.Options) {
		o.Session = func(map[string]any) (exchange.SessionOptions, error) { return exchange.SessionOptions{}, nil }
	})
	s, err := x.Exchange(context.Background(), env.IdP.Token("alice"))
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := env.AWS.Session(s.Credentials.AccessKeyID); s.SessionOptions != nil || info.Tags != nil || info.SourceIdentity != "" {
		t.Fatalf("unshaped session: %+v, STS reports %+v", s.SessionOptions, info)
	}
	bad := *s
	bad.SessionOptions = &exchange.SessionOptions{SourceIdentity: "not valid"}
	_, err = x.Renew(context.Background(), &bad, "")
	if !errors.Is(err, exchange.ErrConfig) || !strings.Contains(err.Error(), "SessionOptions.SourceIdentity:") {
		t.Fatalf("Renew: %v", err)
	}
	wantCalls(t, env, 0, 1, 1)
}

// Tags within every plaintext limit may still exceed STS's packed size:
// STS answers PackedPolicyTooLarge, a configuration error.
func TestSessionPackedPolicyTooLarge(t *testing.T) {
	env := tiptest.New(t)
	tags := map[string]string{}
	for i := range 50 {
		tags[strings.Repeat(string(rune('a'+i%26)), 100)+strings.Repeat("k", 28-i/26)] = strings.Repeat("v", 256)
	}
	x := newExchanger(t, env, false, func(o *exchange.Options) {
		o.Session = func(map[string]any) (exchange.SessionOptions, error) { return exchange.SessionOptions{Tags: tags}, nil }
	})
	_, err := x.Exchange(context.Background(), env.IdP.Token("alice"))
	var xe *exchange.Error
	if !errors.Is(err, exchange.ErrConfig) || !errors.As(err, &xe) || xe.Op != "AssumeRole" || xe.Code != "PackedPolicyTooLarge" {
		t.Fatalf("Exchange: %v, want STS's PackedPolicyTooLarge", err)
	}
	wantCalls(t, env, 0, 1, 1)
}

// On a real Redis (redisstore, sealed): a replica renews, 25 minutes
// later, the session another replica exchanged, with its shape.
func TestCacheSessionShapeThroughRedis(t *testing.T) {
	env := tiptest.New(t)
	r := newSharedRedis(t)
	var ha, hb tenantShape
	replica := func(h *tenantShape) *exchange.Cache {
		client := redis.NewClient(&redis.Options{Addr: r.srv.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1, DialerRetries: 1})
		t.Cleanup(func() { _ = client.Close() })
		store, err := redisstore.New(client, redisstore.Options{EncryptionKeys: [][]byte{r.key}, Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return newCache(t, env, newExchanger(t, env, false, func(o *exchange.Options) { o.Session = h.hook }),
			func(o *exchange.CacheOptions) { o.Store = store })
	}
	a, b := replica(&ha), replica(&hb)
	ctx := context.Background()
	tok := env.IdP.Token("alice")
	if _, _, err := a.Credentials(ctx, key(env, "alice"), tok); err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(25 * time.Minute)
	p, _, err := b.Credentials(ctx, key(env, "alice"), tok)
	if err != nil {
		t.Fatal(err)
	}
	_, creds := owner(t, env, p)
	wantShaped(t, env, creds, "alice")
	wantCalls(t, env, 0, 1, 2)
	if ha.calls.Load() != 1 || hb.calls.Load() != 0 {
		t.Fatalf("hooks called %d and %d times, want 1 and 0", ha.calls.Load(), hb.calls.Load())
	}
}
