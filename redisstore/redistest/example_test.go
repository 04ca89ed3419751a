package redistest_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/redisstore"
	"github.com/tipkit/tipkit/redisstore/redistest"
)

// A test of code that shares sessions through Redis: Start skips it when
// redis-server is not installed, and stops the server when it ends. The
// example needs redis-server, so it has no output to check; the
// package's own tests run the same steps.
func ExampleStart() {
	testSharedSession := func(t *testing.T) {
		srv := redistest.Start(t)
		// The client redisstore recommends: a stopped Redis fails each
		// call at once, without go-redis's retries.
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1, DialerRetries: 1})
		t.Cleanup(func() { _ = rdb.Close() })
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		store, err := redisstore.New(rdb, redisstore.Options{EncryptionKeys: [][]byte{key}})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		alice := exchange.StoreKey{Namespace: "app", User: exchange.UserKey{Issuer: "https://idp.example.com", Subject: "alice"}}
		if ok, err := store.ClaimToken(ctx, alice, "token", "replica-1", time.Now().Add(time.Hour)); err != nil || !ok {
			t.Fatalf("ClaimToken: %t, %v", ok, err)
		}

		srv.Stop() // Redis down: every call fails
		if _, err := store.Load(ctx, alice); err == nil {
			t.Fatal("Load with Redis down: no error")
		}
		if err := srv.Restart(ctx); err != nil { // back, and empty
			t.Fatal(err)
		}
		if ok, err := store.ClaimToken(ctx, alice, "token", "replica-2", time.Now().Add(time.Hour)); err != nil || !ok {
			t.Fatalf("ClaimToken after the restart: %t, %v", ok, err)
		}
	}
	_ = testSharedSession
}

// A program that needs a Redis for a while: Run starts one, Close stops
// it. When redis-server is not installed, the program decides what to do
// (here: it says so and stops). It needs redis-server, so it has no output to check.
func ExampleRun() {
	srv, err := redistest.Run(context.Background())
	switch {
	case errors.Is(err, redistest.ErrNotInstalled):
		fmt.Println("no Redis for this run:", err) // the message says how to install it
		return
	case err != nil:
		log.Fatal(err)
	}
	defer srv.Close()
	pong, err := srv.Client().Ping(context.Background()).Result()
	fmt.Println(srv.Addr(), pong, err)
}
