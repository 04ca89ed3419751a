package dynamostore_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/tipkit/tipkit/dynamostore"
)

// Options are checked by New, whose error names the option and never
// shows a key.
func ExampleNew() {
	client := dynamodb.New(dynamodb.Options{Region: "eu-west-1"})
	_, err := dynamostore.New(client, dynamostore.Options{
		Table:          "tipkit-sessions",
		EncryptionKeys: [][]byte{[]byte("sixteen byte key")},
	})
	fmt.Println(errors.Is(err, dynamostore.ErrConfig))
	fmt.Println(err)
	// Output:
	// true
	// dynamostore: invalid options: Options.EncryptionKeys: at least one key is required, each exactly 32 bytes long (AES-256) and listed once: key 0 is 16 bytes long
}

// A store on a table made at start, checked before the service serves.
// It needs DynamoDB, so it has no output to check.
func Example() {
	ctx := context.Background()
	client := dynamodb.New(dynamodb.Options{Region: "eu-west-1"})
	if err := dynamostore.CreateTable(ctx, client, "tipkit-sessions"); err != nil {
		fmt.Println(err)
		return
	}
	key := make([]byte, 32) // in production: a KMS data key, decrypted at start
	store, err := dynamostore.New(client, dynamostore.Options{Table: "tipkit-sessions", EncryptionKeys: [][]byte{key}})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := store.Check(ctx); err != nil {
		fmt.Println(err) // names the likely cause: endpoint, table, credentials, permissions
		return
	}
	fmt.Printf("%+v\n", store.Stats())
}
