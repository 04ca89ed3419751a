package ctxcreds_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

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
	ctx := ctxcreds.WithIdentity(context.Background(), &ctxcreds.Identity{
		Issuer: "https://idp.example.com", Subject: "alice", Expires: exp,
		Claims: map[string]any{"email": "alice@example.com"},
	})
	id, ok := ctxcreds.IdentityFrom(ctx)
	if !ok || id.Subject != "alice" || id.Issuer != "https://idp.example.com" || !id.Expires.Equal(exp) || id.Claims["email"] != "alice@example.com" {
		t.Fatalf("IdentityFrom() = %+v, %v", id, ok)
	}
	if _, ok := ctxcreds.IdentityFrom(context.Background()); ok {
		t.Fatal("IdentityFrom on an empty context reported an identity")
	}
	if _, ok := ctxcreds.IdentityFrom(ctxcreds.WithIdentity(context.Background(), nil)); ok {
		t.Fatal("a nil identity was reported as present")
	}
}

func TestReadsDoNotAllocate(t *testing.T) {
	ctx := ctxcreds.WithConfig(context.Background(), &aws.Config{Region: "us-east-1"})
	ctx = ctxcreds.WithIdentity(ctx, &ctxcreds.Identity{Subject: "alice"})
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
	ctx := ctxcreds.WithIdentity(context.Background(), &ctxcreds.Identity{
		Issuer:  "https://idp.example.com",
		Subject: "00u1abcd",
	})
	if id, ok := ctxcreds.IdentityFrom(ctx); ok {
		fmt.Println(id.Issuer, id.Subject)
	}
	// Output: https://idp.example.com 00u1abcd
}
