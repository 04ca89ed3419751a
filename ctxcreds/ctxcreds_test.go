package ctxcreds_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go/middleware"

	"github.com/tipkit/tipkit/ctxcreds"
)

func TestConfigRoundTrip(t *testing.T) {
	want := &aws.Config{Region: "eu-west-1"}
	ctx := ctxcreds.WithConfig(context.Background(), want)
	got, ok := ctxcreds.Config(ctx)
	if !ok || got.Region != "eu-west-1" {
		t.Fatalf("Config() = %q, %v; want eu-west-1, true", got.Region, ok)
	}
	got.Region = "changed"
	again, _ := ctxcreds.Config(ctx)
	if again.Region != "eu-west-1" {
		t.Fatalf("changing the returned copy changed the stored config: %q", again.Region)
	}
}

type otherKey struct{}

func TestConfigAbsent(t *testing.T) {
	for name, ctx := range map[string]context.Context{
		"empty":      context.Background(),
		"nil config": ctxcreds.WithConfig(context.Background(), nil),
		"other key":  context.WithValue(context.Background(), otherKey{}, &aws.Config{}),
	} {
		if _, ok := ctxcreds.Config(ctx); ok {
			t.Errorf("%s: Config reported a config", name)
		}
	}
}

func TestIdentityRoundTrip(t *testing.T) {
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	user := ctxcreds.AWSUser{UserID: "94482488-3041-7026-18f3-be45837cd0e4", IdentityStoreID: "d-1234567890"}
	ctx := ctxcreds.WithIdentity(context.Background(), ctxcreds.NewIdentity("https://idp.example.com", "alice",
		map[string]any{"email": "alice@example.com"}, exp, user))
	id, ok := ctxcreds.IdentityFrom(ctx)
	if !ok || id.Subject() != "alice" || id.Issuer() != "https://idp.example.com" || !id.Expires().Equal(exp) || id.StringClaim("email") != "alice@example.com" ||
		id.AWSUserID() != user.UserID || id.IdentityStoreID() != user.IdentityStoreID {
		t.Fatalf("IdentityFrom() = %+v, %v", id, ok)
	}
	if _, ok := ctxcreds.IdentityFrom(context.Background()); ok {
		t.Fatal("IdentityFrom on an empty context reported an identity")
	}
	if _, ok := ctxcreds.IdentityFrom(ctxcreds.WithIdentity(context.Background(), ctxcreds.Identity{})); ok {
		t.Fatal("the zero Identity was reported as present")
	}
}

func TestReadsDoNotAllocate(t *testing.T) {
	ctx := ctxcreds.WithConfig(context.Background(), &aws.Config{Region: "us-east-1"})
	ctx = ctxcreds.WithIdentity(ctx, ctxcreds.NewIdentity("", "alice", nil, time.Time{}, ctxcreds.AWSUser{}))
	allocs := testing.AllocsPerRun(100, func() {
		if _, ok := ctxcreds.Config(ctx); !ok {
			t.Fatal("no config")
		}
		if _, ok := ctxcreds.IdentityFrom(ctx); !ok {
			t.Fatal("no identity")
		}
	})
	if allocs != 0 {
		t.Fatalf("reading the context allocated %v times per run", allocs)
	}
}

func ExampleConfig() {
	// A middleware stores the caller's configuration...
	userCfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("ASIAEXAMPLE", "secret", "session"),
	}
	ctx := ctxcreds.WithConfig(context.Background(), &userCfg)

	// ...and a handler reads it back and builds its clients from it.
	cfg, ok := ctxcreds.Config(ctx)
	fmt.Println(ok, cfg.Region)
	// Output: true us-east-1
}

func ExampleIdentityFrom() {
	ctx := ctxcreds.WithIdentity(context.Background(), ctxcreds.NewIdentity(
		"https://idp.example.com", "00u1abcd", map[string]any{"email": "alice@example.com"}, time.Time{},
		ctxcreds.AWSUser{UserID: "94482488-3041-7026-18f3-be45837cd0e4", IdentityStoreID: "d-1234567890"}))
	if id, ok := ctxcreds.IdentityFrom(ctx); ok {
		fmt.Println(id.Issuer(), id.Subject(), id.StringClaim("email"))
		fmt.Println("Identity Center user", id.AWSUserID(), "of", id.IdentityStoreID())
	}
	// Output:
	// https://idp.example.com 00u1abcd alice@example.com
	// Identity Center user 94482488-3041-7026-18f3-be45837cd0e4 of d-1234567890
}

// A handler that changes what it reads changes nothing for the next
// request of the same caller: claims come out as copies.
func TestIdentityIsReadOnly(t *testing.T) {
	claims := map[string]any{"email": "alice@example.com", "groups": []any{"readers"}, "address": map[string]any{"country": "FR"}}
	id := ctxcreds.NewIdentity("https://idp.example.com", "alice", claims, time.Time{}, ctxcreds.AWSUser{})
	g, _ := id.Claim("groups")
	g.([]any)[0] = "admins"
	a, _ := id.Claim("address")
	a.(map[string]any)["country"] = "US"
	all := id.Claims()
	all["email"] = "mallory@example.com"
	all["groups"].([]any)[0] = "admins"
	if g, _ := id.Claim("groups"); g.([]any)[0] != "readers" {
		t.Errorf("groups changed through a copy: %v", g)
	}
	if a, _ := id.Claim("address"); a.(map[string]any)["country"] != "FR" {
		t.Errorf("address changed through a copy: %v", a)
	}
	if id.StringClaim("email") != "alice@example.com" {
		t.Errorf("email changed through a copy: %q", id.StringClaim("email"))
	}
	if _, ok := id.Claim("missing"); ok {
		t.Error("a missing claim was reported present")
	}
}

// The zero Identity names no one: IdentityFrom does not report it, and its
// methods return zero values instead of panicking.
func TestZeroIdentity(t *testing.T) {
	var id ctxcreds.Identity
	if id.Issuer() != "" || id.Subject() != "" || !id.Expires().IsZero() || id.AWSUserID() != "" ||
		id.IdentityStoreID() != "" || id.StringClaim("email") != "" || id.Claims() != nil || id.Tenant() != "" {
		t.Fatal("the zero Identity returned something other than zero values")
	}
	if v, ok := id.Claim("sub"); v != nil || ok {
		t.Fatalf("Claim on the zero Identity = %v, %v", v, ok)
	}
	cfg := aws.Config{Region: "us-east-1"}
	ctx := ctxcreds.WithCaller(context.Background(), &cfg, credentials.NewStaticCredentialsProvider("a", "s", ""), id)
	if _, ok := ctxcreds.IdentityFrom(ctx); ok {
		t.Fatal("WithCaller with the zero Identity: IdentityFrom reported an identity")
	}
}

// An Identity made by NewIdentity names no tenant: only the middleware,
// serving several, names the tenant of its callers (its tests check it).
func TestNewIdentityNamesNoTenant(t *testing.T) {
	id := ctxcreds.NewIdentity("https://idp.example.com", "alice", map[string]any{"sub": "alice"}, time.Time{}, ctxcreds.AWSUser{})
	if id.Tenant() != "" {
		t.Fatalf("Tenant() = %q, want \"\"", id.Tenant())
	}
}

// A handler that assigns to the Identity it read changes its own copy: the
// context, and every later request given the same Identity, still see the
// caller.
func TestIdentityCannotBeOverwritten(t *testing.T) {
	alice := ctxcreds.NewIdentity("https://idp.example.com", "alice", map[string]any{"email": "alice@example.com"}, time.Time{},
		ctxcreds.AWSUser{UserID: "alice-id", IdentityStoreID: "d-1234567890"})
	cfg := aws.Config{Region: "us-east-1"}
	ctx := ctxcreds.WithCaller(context.Background(), &cfg, credentials.NewStaticCredentialsProvider("a", "s", ""), alice)
	id, _ := ctxcreds.IdentityFrom(ctx)
	if id != alice {
		t.Fatal("IdentityFrom returned another Identity than the one stored")
	}
	id = ctxcreds.NewIdentity("https://idp.example.com", "bob", map[string]any{"email": "bob@example.com"}, time.Time{},
		ctxcreds.AWSUser{UserID: "bob-id", IdentityStoreID: "d-1234567890"})
	if id.Subject() != "bob" {
		t.Fatalf("the handler's own copy reads %q", id.Subject())
	}
	for name, got := range map[string]ctxcreds.Identity{"shared value": alice, "context": must(ctxcreds.IdentityFrom(ctx))} {
		if got.Subject() != "alice" || got.AWSUserID() != "alice-id" || got.StringClaim("email") != "alice@example.com" {
			t.Errorf("%s: subject %q, user %q after a handler overwrote its copy", name, got.Subject(), got.AWSUserID())
		}
	}
}

func must(id ctxcreds.Identity, ok bool) ctxcreds.Identity {
	if !ok {
		panic("no identity")
	}
	return id
}

// Config hands out slices without spare capacity, so that appending to the
// configuration of one reader never writes into the array that the base
// configuration, and so every other reader, shares. Every slice of
// aws.Config is checked, those of its nested structs included, so that a
// slice the SDK adds later fails this test until Config clips it too.
func TestConfigSlicesHaveNoSpareCapacity(t *testing.T) {
	var base aws.Config
	n := 0
	eachSlice(reflect.ValueOf(&base).Elem(), "aws.Config", func(v reflect.Value, _ string) {
		v.Set(reflect.MakeSlice(v.Type(), 1, 8))
		n++
	})
	if n < 5 {
		t.Fatalf("found %d slices in aws.Config", n)
	}
	creds := credentials.NewStaticCredentialsProvider("a", "s", "")
	for name, ctx := range map[string]context.Context{
		"WithConfig": ctxcreds.WithConfig(context.Background(), &base),
		"WithCaller": ctxcreds.WithCaller(context.Background(), &base, creds, ctxcreds.Identity{}),
	} {
		cfg, _ := ctxcreds.Config(ctx)
		eachSlice(reflect.ValueOf(&cfg).Elem(), "aws.Config", func(v reflect.Value, path string) {
			if v.Len() != 1 || v.Cap() != 1 {
				t.Errorf("%s: %s has len %d, cap %d; want 1, 1", name, path, v.Len(), v.Cap())
			}
		})
	}

	// What the review found: two callers of one base each append an
	// option; each runs its own only.
	base = aws.Config{APIOptions: make([]func(*middleware.Stack) error, 1, 8)}
	ran := map[string]bool{}
	option := func(name string) func(*middleware.Stack) error {
		return func(*middleware.Stack) error { ran[name] = true; return nil }
	}
	base.APIOptions[0] = option("base")
	alice, _ := ctxcreds.Config(ctxcreds.WithCaller(context.Background(), &base, creds, ctxcreds.Identity{}))
	alice.APIOptions = append(alice.APIOptions, option("alice"))
	bob, _ := ctxcreds.Config(ctxcreds.WithConfig(context.Background(), &base))
	bob.APIOptions = append(bob.APIOptions, option("bob"))
	for _, f := range alice.APIOptions {
		_ = f(nil)
	}
	if !ran["base"] || !ran["alice"] || ran["bob"] {
		t.Fatalf("alice's configuration ran %v", ran)
	}
}

// eachSlice calls f with every slice field of the struct v, and of the
// structs v holds, with its path from name.
func eachSlice(v reflect.Value, name string, f func(reflect.Value, string)) {
	for i := range v.NumField() {
		fv, path := v.Field(i), name+"."+v.Type().Field(i).Name
		switch fv.Kind() {
		case reflect.Slice:
			f(fv, path)
		case reflect.Struct:
			eachSlice(fv, path, f)
		}
	}
}

// WithCaller stores the configuration and the identity in one allocation,
// and reading them back allocates nothing.
func TestWithCallerAllocatesOnce(t *testing.T) {
	cfg := aws.Config{Region: "us-east-1", APIOptions: make([]func(*middleware.Stack) error, 1, 4)}
	var creds aws.CredentialsProvider = credentials.NewStaticCredentialsProvider("a", "s", "")
	id := ctxcreds.NewIdentity("", "alice", nil, time.Time{}, ctxcreds.AWSUser{})
	var ctx context.Context
	if n := testing.AllocsPerRun(100, func() { ctx = ctxcreds.WithCaller(context.Background(), &cfg, creds, id) }); n != 1 {
		t.Fatalf("WithCaller allocated %v times, want 1", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		if c, ok := ctxcreds.Config(ctx); !ok || c.Credentials == nil {
			t.Fatal("no config")
		}
		if got, ok := ctxcreds.IdentityFrom(ctx); !ok || got != id {
			t.Fatal("not the identity stored")
		}
	}); n != 0 {
		t.Fatalf("reading a WithCaller context allocated %v times per run", n)
	}
}
