package fleet

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/tipkit/tipkit/dynamostore"
	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/redisstore"
)

// Store is one replica's connection to the sessions the fleet shares: the
// exchange.Store its middleware uses, its counts, and how to close it.
type Store struct {
	exchange.Store
	Stats func() StoreStats
	Close func() error
}

// StoreStats is what a replica's Store did, whichever the backend.
type StoreStats struct {
	Loads         uint64 // sessions looked up in the store
	LeasesBusy    uint64 // lease requests that found another replica holding it
	ClaimsRefused uint64 // tokens another replica had claimed already
}

// NewStore opens a new replica's Store, sealing with key (the key every
// replica of the fleet shares).
type NewStore func(key []byte) (*Store, error)

// Redis returns a NewStore on the Redis at addr: each replica has a
// go-redis client of its own (NewClient). timeout is redisstore's
// Options.Timeout; 0 is its default (100 ms).
func Redis(addr string, timeout time.Duration) NewStore {
	return func(key []byte) (*Store, error) {
		client := NewClient(addr)
		s, err := redisstore.New(client, redisstore.Options{EncryptionKeys: [][]byte{key}, Timeout: timeout})
		if err != nil {
			_ = client.Close()
			return nil, err
		}
		return &Store{
			Store: s,
			Stats: func() StoreStats {
				st := s.Stats()
				return StoreStats{Loads: st.Loads, LeasesBusy: st.LeasesBusy, ClaimsRefused: st.ClaimsRefused}
			},
			Close: client.Close,
		}, nil
	}
}

// DynamoDB returns a NewStore on the DynamoDB table table: each replica
// has a client of its own, from newClient. timeout is dynamostore's
// Options.Timeout; 0 is its default (100 ms).
func DynamoDB(newClient func() *dynamodb.Client, table string, timeout time.Duration) NewStore {
	return func(key []byte) (*Store, error) {
		s, err := dynamostore.New(newClient(), dynamostore.Options{Table: table, EncryptionKeys: [][]byte{key}, Timeout: timeout})
		if err != nil {
			return nil, err
		}
		return &Store{
			Store: s,
			Stats: func() StoreStats {
				st := s.Stats()
				return StoreStats{Loads: st.Loads, LeasesBusy: st.LeasesBusy, ClaimsRefused: st.ClaimsRefused}
			},
			Close: func() error { return nil },
		}, nil
	}
}

// CreateTable creates the DynamoDB table table with client, as the
// fleet's replicas need it.
func CreateTable(ctx context.Context, client *dynamodb.Client, table string) error {
	return dynamostore.CreateTable(ctx, client, table)
}
