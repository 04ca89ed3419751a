package main

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/redisstore"
)

// The embedded Redis answers every call of redisstore as Redis does: GET,
// SET with PX, DEL, SET NX PX for token marks and leases, the lease's
// compare-and-delete script (EVALSHA, then EVAL), and keys that expire on
// the clock.
func TestEmbeddedRedisServesTheStore(t *testing.T) {
	ctx := context.Background()
	rs, err := startRedis(ctx, config{embedded: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.stop()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	store, err := redisstore.New(rs.rdb, redisstore.Options{EncryptionKeys: [][]byte{key}, Timeout: storeTimeout})
	if err != nil {
		t.Fatal(err)
	}
	alice := exchange.StoreKey{Namespace: "ns", User: exchange.UserKey{Issuer: "https://idp.example", Subject: "alice"}}

	sess := &exchange.Session{
		Credentials:     aws.Credentials{AccessKeyID: "AKIDALICE", SecretAccessKey: "secret", CanExpire: true, Expires: time.Now().Add(time.Hour)},
		IdentityContext: "context",
		ContextExpires:  time.Now().Add(time.Hour),
		Issuer:          alice.User.Issuer,
		Subject:         alice.User.Subject,
	}
	if err := store.Save(ctx, alice, sess); err != nil {
		t.Fatal("Save:", err)
	}
	got, err := store.Load(ctx, alice)
	if err != nil || got == nil || got.Credentials.AccessKeyID != "AKIDALICE" {
		t.Fatalf("Load: %v, %v", got, err)
	}

	for i, want := range []bool{true, false} {
		if ok, err := store.ClaimToken(ctx, alice, "token", time.Now().Add(time.Hour)); err != nil || ok != want {
			t.Fatalf("ClaimToken %d: %v, %v; want %v", i, ok, err, want)
		}
	}
	if err := store.ReleaseToken(ctx, alice, "token"); err != nil {
		t.Fatal("ReleaseToken:", err)
	}
	if ok, err := store.ClaimToken(ctx, alice, "token", time.Now().Add(time.Hour)); err != nil || !ok {
		t.Fatalf("ClaimToken after ReleaseToken: %v, %v", ok, err)
	}

	lease, err := store.Acquire(ctx, alice, time.Hour)
	if err != nil || lease == "" {
		t.Fatalf("Acquire: %q, %v", lease, err)
	}
	if busy, err := store.Acquire(ctx, alice, time.Hour); err != nil || busy != "" {
		t.Fatalf("Acquire of a held lease: %q, %v", busy, err)
	}
	if err := store.Release(ctx, alice, "0123456789abcdef0123456789abcdef"); err != nil {
		t.Fatal("Release of another value:", err)
	}
	if busy, _ := store.Acquire(ctx, alice, time.Hour); busy != "" {
		t.Fatal("a Release with another value released the lease")
	}
	if err := store.Release(ctx, alice, lease); err != nil {
		t.Fatal("Release:", err)
	}
	short, err := store.Acquire(ctx, alice, 50*time.Millisecond)
	if err != nil || short == "" {
		t.Fatalf("Acquire after Release: %q, %v", short, err)
	}
	time.Sleep(100 * time.Millisecond)
	if again, err := store.Acquire(ctx, alice, time.Hour); err != nil || again == "" {
		t.Fatalf("Acquire after the lease expired: %q, %v", again, err)
	}
	if st := store.Stats(); st.Errors != 0 || st.Rejected != 0 {
		t.Fatalf("store stats %+v", st)
	}
}
