package dynamostore_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tipkit/tipkit/dynamostore"
	"github.com/tipkit/tipkit/dynamostore/dynamotest"
	"github.com/tipkit/tipkit/exchange"
)

const table = "tipkit-sessions"

var (
	alice = exchange.StoreKey{Namespace: "ns", User: exchange.UserKey{Issuer: "https://idp.example.com", Subject: "alice"}}
	bob   = exchange.StoreKey{Namespace: "ns", User: exchange.UserKey{Issuer: "https://idp.example.com", Subject: "bob"}}
)

// newStore starts dynalite, creates the table and returns a store on it,
// with the engine and its client.
func newStore(t *testing.T) (*dynamostore.Store, *dynamodb.Client, *dynamotest.Server) {
	t.Helper()
	srv := dynamotest.Start(t)
	client := srv.Client()
	if err := dynamostore.CreateTable(context.Background(), client, table); err != nil {
		t.Fatal(err)
	}
	s, err := dynamostore.New(client, dynamostore.Options{
		Table:          table,
		EncryptionKeys: [][]byte{bytes.Repeat([]byte{7}, 32)},
		Timeout:        5 * time.Second, // the race detector slows node's neighbour
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, client, srv
}

func session(user exchange.StoreKey) *exchange.Session {
	return &exchange.Session{
		Credentials: aws.Credentials{
			AccessKeyID:     "ASIAEXAMPLEKEY" + strings.ToUpper(user.User.Subject),
			SecretAccessKey: "secret-access-key-of-" + user.User.Subject,
			SessionToken:    "session-token-of-" + user.User.Subject,
			CanExpire:       true,
			Expires:         time.Now().Add(time.Hour).Truncate(time.Second),
		},
		IdentityContext: "identity-context-of-" + user.User.Subject,
		ContextExpires:  time.Now().Add(time.Hour).Truncate(time.Second),
		RefreshToken:    "refresh-token-of-" + user.User.Subject,
		Issuer:          user.User.Issuer,
		Subject:         user.User.Subject,
		UserID:          "arn:aws:identitystore::123456789012:user/" + user.User.Subject,
		SessionOptions: &exchange.SessionOptions{
			Tags:              map[string]string{"qbusiness-dataaccessor:ExternalId": "external-id-of-" + user.User.Subject},
			TransitiveTagKeys: []string{"qbusiness-dataaccessor:ExternalId"},
			SourceIdentity:    "source-identity-of-" + user.User.Subject,
			Policy:            `{"Statement":[{"Effect":"Deny","Action":"s3:PutObject","Resource":"*"}]}`,
			PolicyArns:        []string{"arn:aws:iam::123456789012:policy/ReadOnly"},
		},
	}
}

// items returns every item of the table.
func items(t *testing.T, client *dynamodb.Client) []map[string]types.AttributeValue {
	t.Helper()
	out, err := client.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Items
}

// sessionItems returns the session items of the table.
func sessionItems(t *testing.T, client *dynamodb.Client) []map[string]types.AttributeValue {
	t.Helper()
	var s []map[string]types.AttributeValue
	for _, it := range items(t, client) {
		if strings.HasSuffix(it["pk"].(*types.AttributeValueMemberS).Value, ":s") {
			s = append(s, it)
		}
	}
	return s
}

func put(t *testing.T, client *dynamodb.Client, item map[string]types.AttributeValue) {
	t.Helper()
	if _, err := client.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		t.Fatal(err)
	}
}

// expireAll rewrites every item of the table with an expiry attribute ten
// seconds ago, as an item DynamoDB has not deleted yet.
func expireAll(t *testing.T, client *dynamodb.Client) {
	t.Helper()
	for _, it := range items(t, client) {
		it[dynamostore.AttrExpiry] = &types.AttributeValueMemberN{Value: strconv.FormatInt(time.Now().Add(-10*time.Second).Unix(), 10)}
		put(t, client, it)
	}
}

func TestRoundTrip(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	if got, err := s.Load(ctx, alice); got != nil || err != nil {
		t.Fatalf("Load before Save = %v, %v", got, err)
	}
	want := session(alice)
	if err := s.Save(ctx, alice, want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(ctx, alice)
	if err != nil || got == nil {
		t.Fatalf("Load = %v, %v", got, err)
	}
	gc, wc := got.Credentials, want.Credentials
	if gc.AccessKeyID != wc.AccessKeyID || gc.SecretAccessKey != wc.SecretAccessKey || gc.SessionToken != wc.SessionToken ||
		!gc.Expires.Equal(wc.Expires) || got.IdentityContext != want.IdentityContext || got.RefreshToken != want.RefreshToken ||
		!got.ContextExpires.Equal(want.ContextExpires) || got.Subject != "alice" || got.UserID != want.UserID ||
		!reflect.DeepEqual(got.SessionOptions, want.SessionOptions) {
		t.Fatalf("Load = %+v, want %+v", got, want)
	}
	if got, err := s.Load(ctx, bob); got != nil || err != nil {
		t.Fatalf("bob's Load = %v, %v", got, err)
	}
	if err := s.Save(ctx, bob, session(alice)); err == nil {
		t.Fatal("Save of alice's session under bob's key succeeded")
	}
	// An expired session without a refresh token is deleted.
	old := session(alice)
	old.RefreshToken = ""
	old.Credentials.Expires, old.ContextExpires = time.Now().Add(-time.Minute), time.Now().Add(-time.Minute)
	if err := s.Save(ctx, alice, old); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Load(ctx, alice); got != nil || err != nil {
		t.Fatalf("Load after saving an expired session = %v, %v", got, err)
	}
	if st := s.Stats(); st.Hits != 1 || st.Misses != 3 || st.Saves != 2 || st.Rejected != 0 || st.Errors != 0 {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestClaimToken(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	until := time.Now().Add(time.Minute)
	for _, c := range []struct {
		claim string
		want  bool
	}{{"a", true}, {"a", true}, {"b", false}} {
		if got, err := s.ClaimToken(ctx, alice, "token1", c.claim, until); got != c.want || err != nil {
			t.Fatalf("ClaimToken(%q) = %t, %v; want %t", c.claim, got, err, c.want)
		}
	}
	// Another token, another user: marks of their own.
	if got, err := s.ClaimToken(ctx, alice, "token2", "b", until); !got || err != nil {
		t.Fatalf("ClaimToken of another token = %t, %v", got, err)
	}
	if got, err := s.ClaimToken(ctx, bob, "token1", "b", until); !got || err != nil {
		t.Fatalf("ClaimToken of another user = %t, %v", got, err)
	}
	// Released by another claimer: kept; by its own: gone.
	if err := s.ReleaseToken(ctx, alice, "token1", "b"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ClaimToken(ctx, alice, "token1", "b", until); got {
		t.Fatal("a mark released by another claimer was gone")
	}
	if err := s.ReleaseToken(ctx, alice, "token1", "a"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ClaimToken(ctx, alice, "token1", "b", until); !got || err != nil {
		t.Fatalf("ClaimToken after release = %t, %v", got, err)
	}
	if _, err := s.ClaimToken(ctx, alice, "token1", "", until); err == nil {
		t.Fatal("an empty claim was accepted")
	}
	if st := s.Stats(); st.Claims != 5 || st.ClaimsRefused != 2 {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestLease(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	for _, c := range []struct {
		lease string
		want  bool
	}{{"one", true}, {"one", true}, {"two", false}} {
		if got, err := s.Acquire(ctx, alice, c.lease, time.Minute); got != c.want || err != nil {
			t.Fatalf("Acquire(%q) = %t, %v; want %t", c.lease, got, err, c.want)
		}
	}
	if err := s.Release(ctx, alice, "two"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Acquire(ctx, alice, "two", time.Minute); got {
		t.Fatal("a lease released by another holder was free")
	}
	if err := s.Release(ctx, alice, "one"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Acquire(ctx, alice, "two", time.Minute); !got || err != nil {
		t.Fatalf("Acquire after release = %t, %v", got, err)
	}
	if err := s.Release(ctx, alice, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Acquire(ctx, alice, "three", 0); err == nil {
		t.Fatal("a zero ttl was accepted")
	}
	if st := s.Stats(); st.Leases != 3 || st.LeasesBusy != 2 {
		t.Fatalf("Stats = %+v", st)
	}
}

// Items past their expiry attribute, which DynamoDB deletes only lazily
// (and dynalite never), are absent for Load, claims and leases.
func TestExpiredItemsAreAbsent(t *testing.T) {
	s, client, _ := newStore(t)
	ctx := context.Background()
	if err := s.Save(ctx, alice, session(alice)); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.ClaimToken(ctx, alice, "token", "a", time.Now().Add(time.Hour)); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if ok, err := s.Acquire(ctx, alice, "one", time.Hour); !ok || err != nil {
		t.Fatal(ok, err)
	}
	expireAll(t, client)
	if n := len(items(t, client)); n != 3 {
		t.Fatalf("%d items, want the 3 expired ones still there", n)
	}
	if got, err := s.Load(ctx, alice); got != nil || err != nil {
		t.Fatalf("Load of an expired item = %v, %v", got, err)
	}
	if ok, err := s.ClaimToken(ctx, alice, "token", "b", time.Now().Add(time.Hour)); !ok || err != nil {
		t.Fatalf("ClaimToken over an expired mark = %t, %v", ok, err)
	}
	if ok, err := s.Acquire(ctx, alice, "two", time.Hour); !ok || err != nil {
		t.Fatalf("Acquire over an expired lease = %t, %v", ok, err)
	}
	if st := s.Stats(); st.Rejected != 0 || st.Misses != 1 {
		t.Fatalf("Stats = %+v", st)
	}
}

// Altered values, and values moved from one user's item to another's, are
// absent and counted as rejected.
func TestTamperedAndSwappedItems(t *testing.T) {
	s, client, _ := newStore(t)
	ctx := context.Background()
	for _, k := range []exchange.StoreKey{alice, bob} {
		if err := s.Save(ctx, k, session(k)); err != nil {
			t.Fatal(err)
		}
	}
	its := sessionItems(t, client)
	if len(its) != 2 {
		t.Fatalf("%d session items, want 2", len(its))
	}
	its[0]["v"], its[1]["v"] = its[1]["v"], its[0]["v"]
	put(t, client, its[0])
	put(t, client, its[1])
	for _, k := range []exchange.StoreKey{alice, bob} {
		if got, err := s.Load(ctx, k); got != nil || err != nil {
			t.Fatalf("%s's Load of a swapped value = %v, %v", k.User.Subject, got, err)
		}
	}
	// Restore alice's own value, one byte altered.
	for _, k := range []exchange.StoreKey{alice, bob} {
		if err := s.Save(ctx, k, session(k)); err != nil {
			t.Fatal(err)
		}
	}
	for _, it := range sessionItems(t, client) {
		v := it["v"].(*types.AttributeValueMemberB).Value
		v[len(v)-1] ^= 1
		put(t, client, it)
	}
	for _, k := range []exchange.StoreKey{alice, bob} {
		if got, err := s.Load(ctx, k); got != nil || err != nil {
			t.Fatalf("%s's Load of an altered value = %v, %v", k.User.Subject, got, err)
		}
	}
	// A value of another type, and one over MaxSealedSize.
	its = sessionItems(t, client)
	its[0]["v"] = &types.AttributeValueMemberS{Value: "not sealed"}
	put(t, client, its[0])
	its[1]["v"] = &types.AttributeValueMemberB{Value: make([]byte, dynamostore.MaxSealedSize+1)}
	put(t, client, its[1])
	for _, k := range []exchange.StoreKey{alice, bob} {
		if got, err := s.Load(ctx, k); got != nil || err != nil {
			t.Fatalf("%s's Load = %v, %v", k.User.Subject, got, err)
		}
	}
	if st := s.Stats(); st.Rejected != 6 || st.Hits != 0 {
		t.Fatalf("Stats = %+v, want 6 rejected", st)
	}
}

// The table holds no token, secret, user name, issuer or ARN: the keys
// are keyed hashes and the sessions are sealed.
func TestTableShowsNoSecret(t *testing.T) {
	s, client, _ := newStore(t)
	ctx := context.Background()
	sess := session(alice)
	if err := s.Save(ctx, alice, sess); err != nil {
		t.Fatal(err)
	}
	const tokenID = "token-id-of-alice"
	if _, err := s.ClaimToken(ctx, alice, tokenID, "claim", time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Acquire(ctx, alice, "lease", time.Minute); err != nil {
		t.Fatal(err)
	}
	var dump bytes.Buffer
	for _, it := range items(t, client) {
		for name, v := range it {
			dump.WriteString(name + "=")
			switch v := v.(type) {
			case *types.AttributeValueMemberS:
				dump.WriteString(v.Value)
			case *types.AttributeValueMemberN:
				dump.WriteString(v.Value)
			case *types.AttributeValueMemberB:
				dump.Write(v.Value)
			default:
				t.Fatalf("attribute %s of type %T", name, v)
			}
			dump.WriteString("\n")
		}
	}
	for _, secret := range []string{
		sess.Credentials.AccessKeyID, sess.Credentials.SecretAccessKey, sess.Credentials.SessionToken,
		sess.IdentityContext, sess.RefreshToken, "alice", "idp.example.com", "arn:", tokenID, alice.Namespace + ":",
		sess.SessionOptions.SourceIdentity, "external-id-of-", "s3:PutObject", "qbusiness",
	} {
		if bytes.Contains(dump.Bytes(), []byte(secret)) {
			t.Errorf("the table shows %q:\n%s", secret, dump.String())
		}
	}
}

// With the engine stopped, every call fails at once with an error.
func TestEngineDown(t *testing.T) {
	s, _, srv := newStore(t)
	srv.Stop()
	ctx := context.Background()
	start := time.Now()
	if _, err := s.Load(ctx, alice); err == nil {
		t.Error("Load succeeded")
	}
	if err := s.Save(ctx, alice, session(alice)); err == nil {
		t.Error("Save succeeded")
	}
	if _, err := s.ClaimToken(ctx, alice, "t", "c", time.Now().Add(time.Minute)); err == nil {
		t.Error("ClaimToken succeeded")
	}
	if _, err := s.Acquire(ctx, alice, "l", time.Minute); err == nil {
		t.Error("Acquire succeeded")
	}
	if err := s.Release(ctx, alice, "l"); err == nil {
		t.Error("Release succeeded")
	}
	if err := s.ReleaseToken(ctx, alice, "t", "c"); err == nil {
		t.Error("ReleaseToken succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("six calls took %v with the engine down", d)
	}
	if st := s.Stats(); st.Errors != 6 {
		t.Fatalf("Stats = %+v, want 6 errors", st)
	}
	err := s.Check(ctx)
	if err == nil || !strings.Contains(err.Error(), "cannot connect") {
		t.Fatalf("Check = %v", err)
	}
}

func TestCheck(t *testing.T) {
	s, client, _ := newStore(t)
	ctx := context.Background()
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(items(t, client)); n != 0 {
		t.Fatalf("Check left %d items", n)
	}
	// CreateTable again: the table exists, fine.
	if err := dynamostore.CreateTable(ctx, client, table); err != nil {
		t.Fatal(err)
	}
	missing, err := dynamostore.New(client, dynamostore.Options{Table: "missing", EncryptionKeys: [][]byte{bytes.Repeat([]byte{7}, 32)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := missing.Check(ctx); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Check of a missing table = %v", err)
	}
	// A table with another key schema.
	if _, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String("other"),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	}); err != nil {
		t.Fatal(err)
	}
	other, err := dynamostore.New(client, dynamostore.Options{Table: "other", EncryptionKeys: [][]byte{bytes.Repeat([]byte{7}, 32)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Check(ctx); err == nil || !strings.Contains(err.Error(), "key schema") {
		t.Fatalf("Check of a table with another key = %v", err)
	}
}

func TestNewOptions(t *testing.T) {
	client := dynamodb.New(dynamodb.Options{Region: "us-east-1"})
	key := bytes.Repeat([]byte{1}, 32)
	for _, c := range []struct {
		name   string
		client *dynamodb.Client
		o      dynamostore.Options
		option string
	}{
		{"no client", nil, dynamostore.Options{Table: table, EncryptionKeys: [][]byte{key}}, "client"},
		{"no table", client, dynamostore.Options{EncryptionKeys: [][]byte{key}}, "Options.Table"},
		{"no key", client, dynamostore.Options{Table: table}, "Options.EncryptionKeys"},
		{"short key", client, dynamostore.Options{Table: table, EncryptionKeys: [][]byte{key[:16]}}, "Options.EncryptionKeys"},
		{"key twice", client, dynamostore.Options{Table: table, EncryptionKeys: [][]byte{key, key}}, "Options.EncryptionKeys"},
		{"short name key", client, dynamostore.Options{Table: table, EncryptionKeys: [][]byte{key}, NameKey: key[:8]}, "Options.NameKey"},
		{"negative timeout", client, dynamostore.Options{Table: table, EncryptionKeys: [][]byte{key}, Timeout: -1}, "Options.Timeout"},
	} {
		_, err := dynamostore.New(c.client, c.o)
		if !errors.Is(err, dynamostore.ErrConfig) || !strings.Contains(err.Error(), c.option) {
			t.Errorf("%s: New = %v, want ErrConfig naming %s", c.name, err, c.option)
		}
		if err != nil && bytes.Contains([]byte(err.Error()), key[:8]) {
			t.Errorf("%s: the error shows the key", c.name)
		}
	}
	if _, err := dynamostore.New(client, dynamostore.Options{Table: table, EncryptionKeys: [][]byte{key}}); err != nil {
		t.Fatal(err)
	}
}

// The store's calls follow its own retry rule whatever the client's
// retryer: with the SDK's default one (three attempts, with backoff, on a
// refused connection) and an endpoint that refuses connections, each call
// fails at once with the refusal, not after spending its Timeout in the
// SDK's backoff.
func TestOwnRetryRule(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + ln.Addr().String()
	_ = ln.Close() // nothing listens there any more
	client := dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  aws.AnonymousCredentials{},
	})
	s, err := dynamostore.New(client, dynamostore.Options{Table: table, EncryptionKeys: [][]byte{bytes.Repeat([]byte{7}, 32)}, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = s.Load(ctx, alice)
	if err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Load from a closed port: %v, want the refused connection", err)
	}
	if strings.Contains(err.Error(), "maximum number of attempts") {
		t.Fatalf("Load from a closed port: %v, want one attempt, not the SDK's retries", err)
	}
}
