package redisstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/redis/go-redis/v9"

	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/redisstore"
	"github.com/tipkit/tipkit/redisstore/redistest"
)

var (
	key1    = bytes.Repeat([]byte{1}, 32)
	key2    = bytes.Repeat([]byte{2}, 32)
	nameKey = bytes.Repeat([]byte{'n'}, 32)
)

const namespace = "0123456789abcdef01234567"

func userKey(sub string) exchange.StoreKey {
	return exchange.StoreKey{
		Namespace: namespace,
		User:      exchange.UserKey{Issuer: "https://idp.example.com/issuer-" + sub, Subject: "subject-" + sub},
	}
}

// sessionOf returns a session of k's user whose every secret names sub, so
// that a test can look for them.
func sessionOf(k exchange.StoreKey, sub string) *exchange.Session {
	now := time.Now()
	return &exchange.Session{
		Credentials: aws.Credentials{
			AccessKeyID:     "ASIAACCESSKEY" + sub,
			SecretAccessKey: "secret-access-key-" + sub,
			SessionToken:    "session-token-" + sub,
			Source:          "tipkit",
			CanExpire:       true,
			Expires:         now.Add(time.Hour).Round(0),
			AccountID:       "123456789012",
		},
		IdentityContext: "identity-context-" + sub,
		ContextExpires:  now.Add(2 * time.Hour).Round(0),
		RefreshToken:    "refresh-token-" + sub,
		Issuer:          k.User.Issuer,
		Subject:         k.User.Subject,
		UserID:          "94482488-3041-7026-18f3-be45837cd0e4",
		IdentityStoreID: "d-1234567890",
		SessionOptions: &exchange.SessionOptions{
			Tags:              map[string]string{"qbusiness-dataaccessor:ExternalId": "external-id-" + sub, "team": "team-of-" + sub},
			TransitiveTagKeys: []string{"team"},
			SourceIdentity:    "source-identity-" + sub,
			Policy:            `{"Statement":[{"Effect":"Deny","Action":"s3:PutObject","Resource":"arn:aws:s3:::policy-of-` + sub + `/*"}]}`,
			PolicyArns:        []string{"arn:aws:iam::123456789012:policy/policy-arn-of-" + sub},
		},
	}
}

// secretsOf lists what must never appear in Redis in plaintext.
func secretsOf(s *exchange.Session) []string {
	return []string{s.Credentials.AccessKeyID, s.Credentials.SecretAccessKey, s.Credentials.SessionToken,
		s.IdentityContext, s.RefreshToken, s.Issuer, s.Subject, s.UserID, s.IdentityStoreID,
		s.SessionOptions.Tags["team"], s.SessionOptions.SourceIdentity, s.SessionOptions.Policy, s.SessionOptions.PolicyArns[0]}
}

type fixture struct {
	server *redistest.Server
	client *redis.Client
	store  *redisstore.Store
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := redistest.Start(t)
	c := srv.Client()
	// 2 s per call: under the race detector, with every package's tests
	// sharing two cores, the 100 ms default is not always enough.
	return &fixture{server: srv, client: c, store: newStore(t, c, redisstore.Options{Timeout: 2 * time.Second})}
}

// newStore returns a store on c; o without keys gets key1 and nameKey.
func newStore(t *testing.T, c redis.UniversalClient, o redisstore.Options) *redisstore.Store {
	t.Helper()
	if o.EncryptionKeys == nil {
		o.EncryptionKeys = [][]byte{key1}
		o.NameKey = nameKey
	}
	s, err := redisstore.New(c, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// keys returns every key name of the server, sorted.
func (f *fixture) keys(t *testing.T) []string {
	t.Helper()
	var all []string
	iter := f.client.Scan(context.Background(), 0, "*", 100).Iterator()
	for iter.Next(context.Background()) {
		all = append(all, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("SCAN: %v", err)
	}
	slices.Sort(all)
	return all
}

// onlyNewKey returns the one key of the server not in before.
func (f *fixture) onlyNewKey(t *testing.T, before []string) string {
	t.Helper()
	var added []string
	for _, k := range f.keys(t) {
		if !slices.Contains(before, k) {
			added = append(added, k)
		}
	}
	if len(added) != 1 {
		t.Fatalf("new keys %q, want exactly one", added)
	}
	return added[0]
}

func mustSave(t *testing.T, s *redisstore.Store, k exchange.StoreKey, sess *exchange.Session) {
	t.Helper()
	if err := s.Save(context.Background(), k, sess); err != nil {
		t.Fatalf("Save: %v", err)
	}
}

func mustLoad(t *testing.T, s *redisstore.Store, k exchange.StoreKey) *exchange.Session {
	t.Helper()
	got, err := s.Load(context.Background(), k)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return got
}

func sameSession(t *testing.T, got, want *exchange.Session) {
	t.Helper()
	if got == nil {
		t.Fatal("Load returned no session")
	}
	gc, wc := got.Credentials, want.Credentials
	if gc.AccessKeyID != wc.AccessKeyID || gc.SecretAccessKey != wc.SecretAccessKey || gc.SessionToken != wc.SessionToken ||
		gc.Source != wc.Source || gc.CanExpire != wc.CanExpire || !gc.Expires.Equal(wc.Expires) || gc.AccountID != wc.AccountID ||
		got.IdentityContext != want.IdentityContext || !got.ContextExpires.Equal(want.ContextExpires) ||
		got.RefreshToken != want.RefreshToken || got.Issuer != want.Issuer || got.Subject != want.Subject ||
		got.UserID != want.UserID || got.IdentityStoreID != want.IdentityStoreID ||
		!reflect.DeepEqual(got.SessionOptions, want.SessionOptions) {
		t.Fatalf("Load returned another session than was saved:\n got  %+v\n want %+v", *got, *want)
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	k := userKey("alice")
	want := sessionOf(k, "alice")
	mustSave(t, f.store, k, want)
	sameSession(t, mustLoad(t, f.store, k), want)

	// Without a refresh token and with the identity context's expiry
	// zero.
	bare := sessionOf(k, "alice")
	bare.RefreshToken, bare.ContextExpires, bare.IdentityContext = "", time.Time{}, ""
	bare.UserID, bare.IdentityStoreID = "", ""
	bare.SessionOptions = nil
	mustSave(t, f.store, k, bare)
	sameSession(t, mustLoad(t, f.store, k), bare)

	st := f.store.Stats()
	if st.Loads != 2 || st.Hits != 2 || st.Saves != 2 || st.Misses != 0 || st.Rejected != 0 || st.Errors != 0 {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestLoadAbsent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if got := mustLoad(t, f.store, userKey("nobody")); got != nil {
		t.Fatalf("Load of an absent user = %v, want nil", got)
	}
	if st := f.store.Stats(); st.Loads != 1 || st.Misses != 1 || st.Rejected != 0 {
		t.Fatalf("Stats = %+v, want one miss", st)
	}
}

func TestSaveChecksUser(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	alice, bob := userKey("alice"), userKey("bob")
	if err := f.store.Save(context.Background(), alice, sessionOf(bob, "bob")); err == nil {
		t.Fatal("Save of bob's session as alice's: no error")
	}
	if err := f.store.Save(context.Background(), alice, nil); err == nil {
		t.Fatal("Save of a nil session: no error")
	}
	if keys := f.keys(t); len(keys) != 0 {
		t.Fatalf("keys after refused saves: %q", keys)
	}
}

func TestSessionTTL(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	k := userKey("alice")
	ttlOf := func(s *exchange.Session) time.Duration {
		t.Helper()
		before := f.keys(t)
		mustSave(t, f.store, k, s)
		name := f.onlyNewKey(t, before)
		d, err := f.client.PTTL(ctx, name).Result()
		if err != nil {
			t.Fatalf("PTTL: %v", err)
		}
		if err := f.client.FlushAll(ctx).Err(); err != nil {
			t.Fatalf("FLUSHALL: %v", err)
		}
		return d
	}
	now := time.Now()
	near := func(got, want time.Duration) bool { return got <= want && got > want-10*time.Second }

	s := sessionOf(k, "alice")
	s.RefreshToken = ""
	s.Credentials.Expires, s.ContextExpires = now.Add(10*time.Minute), now.Add(time.Hour)
	if d := ttlOf(s); !near(d, time.Hour) {
		t.Errorf("TTL until the identity context's expiry = %v, want about 1h", d)
	}
	s.Credentials.Expires, s.ContextExpires = now.Add(time.Hour), now.Add(10*time.Minute)
	if d := ttlOf(s); !near(d, time.Hour) {
		t.Errorf("TTL until the credentials' expiry = %v, want about 1h", d)
	}
	s.RefreshToken = "refresh-token"
	if d := ttlOf(s); !near(d, 8*time.Hour) {
		t.Errorf("TTL with a refresh token = %v, want about the default 8h", d)
	}
	s.Credentials.Expires = now.Add(10 * time.Hour)
	if d := ttlOf(s); !near(d, 10*time.Hour) {
		t.Errorf("TTL with a refresh token and later credentials = %v, want about 10h", d)
	}
	s.RefreshToken = ""
	s.Credentials.Expires, s.ContextExpires = time.Now().Add(200*time.Millisecond), time.Time{}
	if d := ttlOf(s); d < 500*time.Millisecond || d > time.Second {
		t.Errorf("TTL of a session about to expire = %v, want the minimum of 1s", d)
	}

	short := newStore(t, f.client, redisstore.Options{EncryptionKeys: [][]byte{key1}, NameKey: nameKey, RefreshTokenTTL: time.Minute})
	s = sessionOf(k, "alice")
	s.Credentials.Expires, s.ContextExpires = now.Add(-time.Minute), now.Add(-time.Minute)
	before := f.keys(t)
	mustSave(t, short, k, s)
	name := f.onlyNewKey(t, before)
	if d, _ := f.client.PTTL(ctx, name).Result(); !near(d, time.Minute) {
		t.Errorf("TTL with a refresh token, expired otherwise, RefreshTokenTTL 1m = %v", d)
	}

	// A session expired everywhere deletes the one saved before.
	mustSave(t, f.store, k, sessionOf(k, "alice"))
	s.RefreshToken = ""
	mustSave(t, f.store, k, s)
	if got := mustLoad(t, f.store, k); got != nil {
		t.Fatalf("Load after saving an expired session = %v, want nil", got)
	}
	if keys := f.keys(t); len(keys) != 0 {
		t.Fatalf("keys after saving an expired session: %q", keys)
	}
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	k := userKey("alice")
	old := newStore(t, f.client, redisstore.Options{EncryptionKeys: [][]byte{key1}, NameKey: nameKey})
	both := newStore(t, f.client, redisstore.Options{EncryptionKeys: [][]byte{key2, key1}, NameKey: nameKey})
	next := newStore(t, f.client, redisstore.Options{EncryptionKeys: [][]byte{key2}, NameKey: nameKey})

	sealedByOld := sessionOf(k, "alice")
	mustSave(t, old, k, sealedByOld)
	sameSession(t, mustLoad(t, both, k), sealedByOld)
	if got := mustLoad(t, next, k); got != nil {
		t.Fatal("a store without key1 opened a session sealed by key1")
	}
	if st := next.Stats(); st.Rejected != 1 {
		t.Fatalf("unknown key: Stats = %+v, want one rejected", st)
	}

	sealedByNew := sessionOf(k, "alice2")
	sealedByNew.Issuer, sealedByNew.Subject = k.User.Issuer, k.User.Subject
	mustSave(t, both, k, sealedByNew)
	sameSession(t, mustLoad(t, next, k), sealedByNew)
	if got := mustLoad(t, old, k); got != nil {
		t.Fatal("a store without key2 opened a session sealed by key2")
	}
	if st := old.Stats(); st.Rejected != 1 {
		t.Fatalf("unknown key: Stats = %+v, want one rejected", st)
	}
}

func TestDefaultNameKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	k := userKey("alice")
	s := sessionOf(k, "alice")
	first := newStore(t, f.client, redisstore.Options{EncryptionKeys: [][]byte{key1}})
	mustSave(t, first, k, s)

	// The name key derives from the first encryption key only.
	added := newStore(t, f.client, redisstore.Options{EncryptionKeys: [][]byte{key1, key2}})
	sameSession(t, mustLoad(t, added, k), s)

	// Another first key names other keys: the session is not found.
	rotated := newStore(t, f.client, redisstore.Options{EncryptionKeys: [][]byte{key2, key1}})
	if got := mustLoad(t, rotated, k); got != nil {
		t.Fatal("another first key found the session under the same name")
	}
	if st := rotated.Stats(); st.Misses != 1 {
		t.Fatalf("Stats = %+v, want a miss", st)
	}
	// With the name key set, the names differ from the derived ones.
	named := newStore(t, f.client, redisstore.Options{EncryptionKeys: [][]byte{key1}, NameKey: nameKey})
	if got := mustLoad(t, named, k); got != nil {
		t.Fatal("a set name key found the session saved under the derived one")
	}
}

func TestMovedValueIsAbsent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	alice, bob := userKey("alice"), userKey("bob")
	aliceSession := sessionOf(alice, "alice")
	mustSave(t, f.store, alice, aliceSession)
	aliceName := f.onlyNewKey(t, nil)
	before := f.keys(t)
	mustSave(t, f.store, bob, sessionOf(bob, "bob"))
	bobName := f.onlyNewKey(t, before)

	aliceValue, err := f.client.Get(ctx, aliceName).Bytes()
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	if err := f.client.Set(ctx, bobName, aliceValue, time.Hour).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if got := mustLoad(t, f.store, bob); got != nil {
		t.Fatalf("bob's load of alice's value copied to his key returned a session (issuer %q)", got.Issuer)
	}

	// Under another namespace's name too.
	other := alice
	other.Namespace = "another-namespace"
	before = f.keys(t)
	mustSave(t, f.store, other, sessionOf(other, "alice"))
	otherName := f.onlyNewKey(t, before)
	if err := f.client.Set(ctx, otherName, aliceValue, time.Hour).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if got := mustLoad(t, f.store, other); got != nil {
		t.Fatal("a value moved to another namespace's key opened")
	}
	if st := f.store.Stats(); st.Rejected != 2 || st.Hits != 0 {
		t.Fatalf("Stats = %+v, want two rejected", st)
	}
	// Alice's own is still hers.
	sameSession(t, mustLoad(t, f.store, alice), aliceSession)
}

func TestUnopenableValues(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	k := userKey("alice")
	mustSave(t, f.store, k, sessionOf(k, "alice"))
	name := f.onlyNewKey(t, nil)
	good, err := f.client.Get(ctx, name).Bytes()
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	with := func(i int, b byte) []byte {
		v := bytes.Clone(good)
		v[i] = b
		return v
	}
	cases := map[string][]byte{
		"empty":              {},
		"garbage":            []byte("not a sealed session at all, but long enough to be one"),
		"header only":        good[:5],
		"no tag":             good[:17],
		"truncated":          good[:len(good)-1],
		"one more byte":      append(bytes.Clone(good), 0),
		"version 0":          with(0, 0),
		"version 2":          with(0, 2),
		"unknown key ID":     with(1, good[1]^0xff),
		"flipped nonce":      with(6, good[6]^1),
		"flipped ciphertext": with(20, good[20]^1),
		"flipped tag":        with(len(good)-1, good[len(good)-1]^1),
	}
	rejected := uint64(0)
	for what, v := range cases {
		if err := f.client.Set(ctx, name, v, time.Hour).Err(); err != nil {
			t.Fatalf("SET: %v", err)
		}
		got, err := f.store.Load(ctx, k)
		if got != nil || err != nil {
			t.Errorf("%s: Load = %v, %v; want nil, nil", what, got, err)
		}
		rejected++
		if st := f.store.Stats(); st.Rejected != rejected {
			t.Errorf("%s: Rejected = %d, want %d", what, st.Rejected, rejected)
		}
	}

	// A Redis value of another type.
	if err := f.client.Del(ctx, name).Err(); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if err := f.client.LPush(ctx, name, "x").Err(); err != nil {
		t.Fatalf("LPUSH: %v", err)
	}
	if got, err := f.store.Load(ctx, k); got != nil || err != nil {
		t.Errorf("list at the session's key: Load = %v, %v; want nil, nil", got, err)
	}
	if st := f.store.Stats(); st.Rejected != rejected+1 || st.Errors != 0 {
		t.Errorf("list at the session's key: Stats = %+v, want Rejected %d and no error", st, rejected+1)
	}
	// Save replaces it.
	s := sessionOf(k, "alice")
	mustSave(t, f.store, k, s)
	sameSession(t, mustLoad(t, f.store, k), s)
}

func TestNoPlaintextInRedis(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	var secrets []string
	for _, name := range []string{"alice", "bob"} {
		k := userKey(name)
		s := sessionOf(k, name)
		secrets = append(secrets, secretsOf(s)...)
		mustSave(t, f.store, k, s)
		// A token claimed and a lease taken.
		webToken := "header.payload-of-" + name + ".signature"
		id := exchange.TokenID(webToken)
		secrets = append(secrets, id, webToken, k.Namespace)
		if ok, err := f.store.ClaimToken(ctx, k, id, claimA, time.Now().Add(time.Hour)); err != nil || !ok {
			t.Fatalf("ClaimToken = %t, %v", ok, err)
		}
		if held, err := f.store.Acquire(ctx, k, leaseA, time.Minute); err != nil || !held {
			t.Fatalf("Acquire = %t, %v", held, err)
		}
	}
	keys := f.keys(t)
	if len(keys) != 6 {
		t.Fatalf("keys %q, want 3 per user", keys)
	}
	for _, name := range keys {
		contents := []string{name}
		typ, err := f.client.Type(ctx, name).Result()
		if err != nil || typ != "string" {
			t.Fatalf("TYPE %s = %q, %v", name, typ, err)
		}
		v, err := f.client.Get(ctx, name).Result()
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		dump, err := f.client.Dump(ctx, name).Result()
		if err != nil {
			t.Fatalf("DUMP: %v", err)
		}
		contents = append(contents, v, dump)
		for _, c := range contents {
			for _, secret := range secrets {
				if strings.Contains(c, secret) {
					t.Errorf("key %s holds %q in plaintext", name, secret)
				}
			}
		}
	}
}

// hashTag returns the part of a key name between its first '{' and the
// next '}', the part Redis Cluster hashes.
func hashTag(t *testing.T, name string) string {
	t.Helper()
	i := strings.IndexByte(name, '{')
	j := strings.IndexByte(name[i+1:], '}')
	if i < 0 || j <= 0 {
		t.Fatalf("key %s has no hash tag", name)
	}
	return name[i+1 : i+1+j]
}

func TestOneHashTagPerUser(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	tags := map[string]string{} // tag -> user
	for _, name := range []string{"alice", "bob"} {
		k := userKey(name)
		before := f.keys(t)
		mustSave(t, f.store, k, sessionOf(k, name))
		if _, err := f.store.ClaimToken(ctx, k, exchange.TokenID("a.b"+name+".c"), claimA, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := f.store.Acquire(ctx, k, leaseA, time.Minute); err != nil {
			t.Fatal(err)
		}
		var userTags []string
		for _, key := range f.keys(t) {
			if !slices.Contains(before, key) {
				userTags = append(userTags, hashTag(t, key))
			}
		}
		if len(userTags) != 3 || userTags[0] != userTags[1] || userTags[1] != userTags[2] {
			t.Fatalf("%s's keys have the hash tags %q, want 3 identical", name, userTags)
		}
		if other, ok := tags[userTags[0]]; ok {
			t.Fatalf("%s and %s share the hash tag %s", name, other, userTags[0])
		}
		tags[userTags[0]] = name
	}
	for _, key := range f.keys(t) {
		if !strings.HasPrefix(key, "tipkit:") {
			t.Errorf("key %s does not begin with the default prefix", key)
		}
	}
}

func TestPrefix(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := newStore(t, f.client, redisstore.Options{EncryptionKeys: [][]byte{key1}, Prefix: "app:sessions"})
	k := userKey("alice")
	mustSave(t, s, k, sessionOf(k, "alice"))
	if keys := f.keys(t); len(keys) != 1 || !strings.HasPrefix(keys[0], "app:sessions:") {
		t.Fatalf("keys %q, want one beginning with app:sessions:", keys)
	}
	// Another prefix, another key: the same user is not found there.
	if got := mustLoad(t, newStore(t, f.client, redisstore.Options{EncryptionKeys: [][]byte{key1}}), k); got != nil {
		t.Fatal("a store with another prefix found the session")
	}
}

func TestNamespacesApart(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	a := userKey("alice")
	b := a
	b.Namespace = "fedcba9876543210fedcba98"
	mustSave(t, f.store, a, sessionOf(a, "alice"))
	if got := mustLoad(t, f.store, b); got != nil {
		t.Fatal("another namespace loaded the session")
	}
	id := exchange.TokenID("x.y.z")
	if ok, _ := f.store.ClaimToken(ctx, a, id, claimA, time.Now().Add(time.Hour)); !ok {
		t.Fatal("first claim refused")
	}
	if ok, err := f.store.ClaimToken(ctx, b, id, claimB, time.Now().Add(time.Hour)); err != nil || !ok {
		t.Fatalf("claim in another namespace = %t, %v; want true", ok, err)
	}
	if held, _ := f.store.Acquire(ctx, a, leaseA, time.Minute); !held {
		t.Fatal("first lease busy")
	}
	if held, err := f.store.Acquire(ctx, b, leaseB, time.Minute); err != nil || !held {
		t.Fatalf("lease in another namespace = %t, %v; want held", held, err)
	}
	// The namespace does not show in any name.
	for _, key := range f.keys(t) {
		if strings.Contains(key, a.Namespace) || strings.Contains(key, b.Namespace) {
			t.Errorf("key %s shows a namespace", key)
		}
	}
}

// eventually polls cond until it holds, or fails t after a few seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestClaims(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	k := userKey("alice")
	id := exchange.TokenID("a.b.c")
	claim := func(value string, until time.Time) bool {
		t.Helper()
		ok, err := f.store.ClaimToken(ctx, k, id, value, until)
		if err != nil {
			t.Fatalf("ClaimToken: %v", err)
		}
		return ok
	}
	release := func(value string) {
		t.Helper()
		if err := f.store.ReleaseToken(ctx, k, id, value); err != nil {
			t.Fatalf("ReleaseToken: %v", err)
		}
	}
	hour := time.Now().Add(time.Hour)
	if !claim(claimA, hour) {
		t.Fatal("first claim refused")
	}
	if claim(claimB, hour) {
		t.Fatal("another claimer's claim granted")
	}
	if !claim(claimA, hour) {
		t.Fatal("the claimer's own claim made again refused")
	}
	if ok, _ := f.store.ClaimToken(ctx, userKey("bob"), id, claimB, hour); !ok {
		t.Fatal("another user's claim of the same id refused")
	}
	release(claimB) // not the claimer's: the mark stays
	if claim(claimB, hour) {
		t.Fatal("a release by another claimer removed the mark")
	}
	release(claimA)
	if !claim(claimB, hour) {
		t.Fatal("claim after release refused")
	}
	release(claimB)
	release(claimB) // an unclaimed token
	if _, err := f.store.ClaimToken(ctx, k, id, "", hour); err == nil {
		t.Fatal("ClaimToken with an empty claim: no error")
	}

	// Expiry.
	if !claim(claimA, time.Now().Add(100*time.Millisecond)) {
		t.Fatal("claim refused")
	}
	if claim(claimB, time.Now().Add(100*time.Millisecond)) {
		t.Fatal("claim granted before the first expired")
	}
	eventually(t, "a claim after the first expired", func() bool { return claim(claimB, time.Now().Add(time.Hour)) })
	// An until already past still marks (for a moment) and is granted.
	if ok, err := f.store.ClaimToken(ctx, k, exchange.TokenID("d.e.f"), claimA, time.Now().Add(-time.Hour)); err != nil || !ok {
		t.Fatalf("claim with a past until = %t, %v", ok, err)
	}
	st := f.store.Stats()
	if st.Claims != 7 || st.ClaimsRefused < 3 || st.Errors != 0 {
		t.Fatalf("Stats = %+v", st)
	}
}

// Values of claims and leases of two holders.
const (
	claimA = "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1"
	claimB = "fedcba9876543210fedcba9876543210"
	leaseA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	leaseB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	leaseC = "cccccccccccccccccccccccccccccccc"
)

func TestLeases(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	k := userKey("alice")
	acquire := func(lease string, ttl time.Duration) bool {
		t.Helper()
		held, err := f.store.Acquire(ctx, k, lease, ttl)
		if err != nil {
			t.Fatalf("Acquire: %v", err)
		}
		return held
	}
	release := func(lease string) {
		t.Helper()
		if err := f.store.Release(ctx, k, lease); err != nil {
			t.Fatalf("Release: %v", err)
		}
	}

	if !acquire(leaseA, time.Minute) {
		t.Fatal("first Acquire busy")
	}
	if acquire(leaseB, time.Minute) {
		t.Fatal("another holder's Acquire took the lease")
	}
	if !acquire(leaseA, time.Minute) {
		t.Fatal("the holder's Acquire made again found the lease busy")
	}
	if held, _ := f.store.Acquire(ctx, userKey("bob"), leaseB, time.Minute); !held {
		t.Fatal("another user's lease busy")
	}
	release(leaseB) // not the holder's
	release("")
	if acquire(leaseB, time.Minute) {
		t.Fatal("a release by a non-holder freed the lease")
	}
	release(leaseA)
	if !acquire(leaseB, 100*time.Millisecond) {
		t.Fatal("Acquire after release busy")
	}

	// The lease expires; the old holder's release leaves the new holder's
	// lease alone.
	eventually(t, "the lease after expiry", func() bool { return acquire(leaseC, time.Minute) })
	release(leaseB)
	if acquire(leaseA, time.Minute) {
		t.Fatal("the expired holder's release freed the new holder's lease")
	}
	release(leaseC)
	if !acquire(leaseA, time.Minute) {
		t.Fatal("lease busy after its holder released it")
	}

	if _, err := f.store.Acquire(ctx, k, leaseA, 0); err == nil {
		t.Fatal("Acquire with a zero ttl: no error")
	}
	if _, err := f.store.Acquire(ctx, userKey("carol"), "", time.Minute); err == nil {
		t.Fatal("Acquire with an empty lease: no error")
	}
	st := f.store.Stats()
	if st.Leases != 6 || st.LeasesBusy < 3 || st.Errors != 0 {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestOneLeaseHolderAtATime(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	k := userKey("alice")
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		holders []string
	)
	for i := range 32 {
		wg.Go(func() {
			lease := fmt.Sprintf("lease-%d", i)
			held, err := f.store.Acquire(context.Background(), k, lease, time.Minute)
			if err != nil {
				t.Errorf("Acquire: %v", err)
			}
			if held {
				mu.Lock()
				holders = append(holders, lease)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(holders) != 1 {
		t.Fatalf("%d holders at once, want 1", len(holders))
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			name := string(rune('a' + i))
			k := userKey(name)
			ctx := context.Background()
			for range 20 {
				want := sessionOf(k, name)
				if err := f.store.Save(ctx, k, want); err != nil {
					t.Errorf("Save: %v", err)
					return
				}
				got, err := f.store.Load(ctx, k)
				if err != nil || got == nil || got.Subject != k.User.Subject || got.Credentials.SecretAccessKey != want.Credentials.SecretAccessKey {
					t.Errorf("Load of %s = %v, %v", name, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestRedisDown(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// As package redisstore recommends, no command or dial retries: a call
	// fails as soon as Redis refuses it (go-redis's default retries would
	// take over a second per call), and the first call after Redis is back
	// succeeds.
	c := redis.NewClient(&redis.Options{Addr: f.server.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = c.Close() })
	f.store = newStore(t, c, redisstore.Options{Timeout: 2 * time.Second})
	ctx := context.Background()
	k := userKey("alice")
	s := sessionOf(k, "alice")
	mustSave(t, f.store, k, s)
	if held, err := f.store.Acquire(ctx, k, leaseA, time.Minute); err != nil || !held {
		t.Fatalf("Acquire = %t, %v", held, err)
	}

	f.server.Stop()
	id := exchange.TokenID("a.b.c")
	calls := map[string]func() error{
		"Load": func() error {
			got, err := f.store.Load(ctx, k)
			if got != nil {
				t.Error("Load returned a session with Redis down")
			}
			return err
		},
		"Save": func() error { return f.store.Save(ctx, k, s) },
		"ClaimToken": func() error {
			ok, err := f.store.ClaimToken(ctx, k, id, claimA, time.Now().Add(time.Hour))
			if ok {
				t.Error("ClaimToken granted with Redis down")
			}
			return err
		},
		"ReleaseToken": func() error { return f.store.ReleaseToken(ctx, k, id, claimA) },
		"Acquire": func() error {
			held, err := f.store.Acquire(ctx, k, leaseB, time.Minute)
			if held {
				t.Error("Acquire returned a lease with Redis down")
			}
			return err
		},
		"Release": func() error { return f.store.Release(ctx, k, leaseA) },
	}
	for name, call := range calls {
		err := call()
		if err == nil {
			t.Errorf("%s with Redis down: no error", name)
			continue
		}
		for _, secret := range secretsOf(s) {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s's error %q holds a secret", name, err)
			}
		}
		if !strings.HasPrefix(err.Error(), "redisstore: "+name+": ") {
			t.Errorf("%s's error %q does not name the operation", name, err)
		}
	}
	if st := f.store.Stats(); st.Errors != uint64(len(calls)) {
		t.Fatalf("Errors = %d, want %d", st.Errors, len(calls))
	}

	if err := f.server.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	mustSave(t, f.store, k, s)
	sameSession(t, mustLoad(t, f.store, k), s)
}

// TestTimeout pauses Redis's writes longer than the store's timeout: a
// save returns a deadline error instead of waiting for them.
func TestTimeout(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	k := userKey("alice")
	s := sessionOf(k, "alice")
	mustSave(t, f.store, k, s) // a connection in the pool
	const pause = 5 * time.Second
	admin := f.server.Client()
	if err := admin.Do(ctx, "CLIENT", "PAUSE", pause.Milliseconds(), "WRITE").Err(); err != nil {
		t.Fatalf("CLIENT PAUSE: %v", err)
	}
	start := time.Now()
	err := f.store.Save(ctx, k, s)
	elapsed := time.Since(start)
	if err := admin.Do(ctx, "CLIENT", "UNPAUSE").Err(); err != nil {
		t.Fatalf("CLIENT UNPAUSE: %v", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Save while Redis's writes are paused: %v, want a deadline error", err)
	}
	if elapsed >= pause {
		t.Fatalf("Save returned after %v, when Redis wrote again: the timeout did not bound it", elapsed)
	}
	if st := f.store.Stats(); st.Errors != 1 {
		t.Fatalf("Errors = %d, want 1", st.Errors)
	}
	// The connection that timed out is not reused for another's answer.
	sameSession(t, mustLoad(t, f.store, k), s)
}

func TestNewOptions(t *testing.T) {
	t.Parallel()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	var nilClient *redis.Client
	cases := []struct {
		name   string
		client redis.UniversalClient
		o      redisstore.Options
		want   error
	}{
		{"no client", nil, redisstore.Options{EncryptionKeys: [][]byte{key1}}, redisstore.ErrConfig},
		{"nil client", nilClient, redisstore.Options{EncryptionKeys: [][]byte{key1}}, redisstore.ErrConfig},
		{"no key", c, redisstore.Options{}, redisstore.ErrConfig},
		{"empty key list", c, redisstore.Options{EncryptionKeys: [][]byte{}}, redisstore.ErrConfig},
		{"AES-128 key", c, redisstore.Options{EncryptionKeys: [][]byte{make([]byte, 16)}}, redisstore.ErrConfig},
		{"AES-192 key", c, redisstore.Options{EncryptionKeys: [][]byte{make([]byte, 24)}}, redisstore.ErrConfig},
		{"31 bytes", c, redisstore.Options{EncryptionKeys: [][]byte{make([]byte, 31)}}, redisstore.ErrConfig},
		{"33 bytes", c, redisstore.Options{EncryptionKeys: [][]byte{make([]byte, 33)}}, redisstore.ErrConfig},
		{"second key short", c, redisstore.Options{EncryptionKeys: [][]byte{key1, make([]byte, 16)}}, redisstore.ErrConfig},
		{"nil second key", c, redisstore.Options{EncryptionKeys: [][]byte{key1, nil}}, redisstore.ErrConfig},
		{"key twice", c, redisstore.Options{EncryptionKeys: [][]byte{key1, key2, bytes.Clone(key1)}}, redisstore.ErrConfig},
		{"short name key", c, redisstore.Options{EncryptionKeys: [][]byte{key1}, NameKey: make([]byte, 16)}, redisstore.ErrConfig},
		{"empty name key", c, redisstore.Options{EncryptionKeys: [][]byte{key1}, NameKey: []byte{}}, redisstore.ErrConfig},
		{"brace in prefix", c, redisstore.Options{EncryptionKeys: [][]byte{key1}, Prefix: "app{1}"}, redisstore.ErrConfig},
		{"negative timeout", c, redisstore.Options{EncryptionKeys: [][]byte{key1}, Timeout: -1}, redisstore.ErrConfig},
		{"negative refresh token TTL", c, redisstore.Options{EncryptionKeys: [][]byte{key1}, RefreshTokenTTL: -time.Hour}, redisstore.ErrConfig},
	}
	for _, tc := range cases {
		s, err := redisstore.New(tc.client, tc.o)
		if !errors.Is(err, tc.want) || s != nil {
			t.Errorf("%s: New = %v, %v; want %v", tc.name, s, err, tc.want)
		}
	}
	if _, err := redisstore.New(c, redisstore.Options{EncryptionKeys: [][]byte{key1, key2}, NameKey: nameKey, Prefix: "a:b", Timeout: time.Second, RefreshTokenTTL: time.Hour}); err != nil {
		t.Errorf("New with every option: %v", err)
	}
}

// TestNewRejectsShortAESKeys checks the two other AES key sizes by name:
// AES accepts them, the store does not.
func TestNewRejectsShortAESKeys(t *testing.T) {
	t.Parallel()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	for _, n := range []int{16, 24} {
		_, err := redisstore.New(c, redisstore.Options{EncryptionKeys: [][]byte{bytes.Repeat([]byte{7}, n)}})
		if !errors.Is(err, redisstore.ErrConfig) {
			t.Errorf("a %d-byte key: New error %v, want ErrConfig", n, err)
		}
	}
}

// A value that cannot be opened is logged, with the reason and nothing of
// the value, the key or the session.
func TestRejectedValueIsLogged(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var logs bytes.Buffer
	store := newStore(t, f.client, redisstore.Options{EncryptionKeys: [][]byte{key1}, NameKey: nameKey,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := context.Background()
	alice, bob := userKey("alice"), userKey("bob")
	aliceSession := sessionOf(alice, "alice")
	mustSave(t, store, alice, aliceSession)
	aliceName := f.onlyNewKey(t, nil)
	before := f.keys(t)
	mustSave(t, store, bob, sessionOf(bob, "bob"))
	bobName := f.onlyNewKey(t, before)
	value, err := f.client.Get(ctx, aliceName).Bytes()
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	if err := f.client.Set(ctx, bobName, value, time.Hour).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if got := mustLoad(t, store, bob); got != nil {
		t.Fatal("a moved value opened")
	}
	out := logs.String()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "does not open") {
		t.Fatalf("log %q does not tell the rejection", out)
	}
	for _, s := range append(secretsOf(aliceSession), aliceName, bobName) {
		if strings.Contains(out, s) {
			t.Fatalf("log %q shows %q", out, s)
		}
	}
}
