package redisstore_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"log"
	"os"

	"github.com/redis/go-redis/v9"

	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/redisstore"
)

// A store on one Redis server, with the encryption key and the name key
// from the environment (each 32 random bytes in base64, from a secret
// manager). It needs a server, so it has no output to check.
func Example() {
	encryptionKey, err := base64.StdEncoding.DecodeString(os.Getenv("TIPKIT_STORE_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	nameKey, err := base64.StdEncoding.DecodeString(os.Getenv("TIPKIT_STORE_NAME_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	client := redis.NewClient(&redis.Options{
		Addr: "localhost:6379",
		// Let the store's timeout bound reads and writes.
		ContextTimeoutEnabled: true,
	})
	defer client.Close()

	store, err := redisstore.New(client, redisstore.Options{
		EncryptionKeys: [][]byte{encryptionKey},
		NameKey:        nameKey,
	})
	if err != nil {
		log.Fatal(err) // the error names the option, never the key
	}

	var _ exchange.Store = store // what an exchange.Cache shares through
	key := exchange.StoreKey{
		Namespace: "the Exchanger's Namespace()",
		User:      exchange.UserKey{Issuer: "https://idp.example.com", Subject: "alice"},
	}
	session, err := store.Load(context.Background(), key)
	switch {
	case err != nil:
		fmt.Println("Redis unavailable:", err)
	case session == nil:
		fmt.Println("no shared session: exchange the user's token")
	default:
		fmt.Println("shared session:", session) // prints no secret
	}
	fmt.Printf("%+v\n", store.Stats())
}
