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
// SET with PX, DEL, the scripts of Load (STRLEN, GET), of the token marks
// and leases (SET NX PX, else GET) and of their compare-and-delete
// (EVALSHA, then EVAL), and keys that expire on the clock.
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

	for i, claim := range []string{"mine", "mine", "theirs"} {
		want := claim == "mine"
		if ok, err := store.ClaimToken(ctx, alice, "token", claim, time.Now().Add(time.Hour)); err != nil || ok != want {
			t.Fatalf("ClaimToken %d (%s): %v, %v; want %v", i, claim, ok, err, want)
		}
	}
	if err := store.ReleaseToken(ctx, alice, "token", "mine"); err != nil {
		t.Fatal("ReleaseToken:", err)
	}
	if ok, err := store.ClaimToken(ctx, alice, "token", "theirs", time.Now().Add(time.Hour)); err != nil || !ok {
		t.Fatalf("ClaimToken after ReleaseToken: %v, %v", ok, err)
	}

	if held, err := store.Acquire(ctx, alice, "lease-1", time.Hour); err != nil || !held {
		t.Fatalf("Acquire: %v, %v", held, err)
	}
	if held, err := store.Acquire(ctx, alice, "lease-1", time.Hour); err != nil || !held {
		t.Fatalf("Acquire made again by the holder: %v, %v", held, err)
	}
	if held, err := store.Acquire(ctx, alice, "lease-2", time.Hour); err != nil || held {
		t.Fatalf("Acquire of a held lease: %v, %v", held, err)
	}
	if err := store.Release(ctx, alice, "lease-2"); err != nil {
		t.Fatal("Release of another value:", err)
	}
	if held, _ := store.Acquire(ctx, alice, "lease-2", time.Hour); held {
		t.Fatal("a Release with another value released the lease")
	}
	if err := store.Release(ctx, alice, "lease-1"); err != nil {
		t.Fatal("Release:", err)
	}
	if held, err := store.Acquire(ctx, alice, "lease-3", 50*time.Millisecond); err != nil || !held {
		t.Fatalf("Acquire after Release: %v, %v", held, err)
	}
	time.Sleep(100 * time.Millisecond)
	if held, err := store.Acquire(ctx, alice, "lease-4", time.Hour); err != nil || !held {
		t.Fatalf("Acquire after the lease expired: %v, %v", held, err)
	}
	if st := store.Stats(); st.Errors != 0 || st.Rejected != 0 {
		t.Fatalf("store stats %+v", st)
	}
}
