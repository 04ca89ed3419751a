package redisstore

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/redis/go-redis/v9"

	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/internal/seal"
	"github.com/tipkit/tipkit/redisstore/redistest"
)

// TestSessionOfAnotherUser seals, under alice's name, a session that names
// bob, as only a store with a bug could write: Load opens it and still
// refuses it.
func TestSessionOfAnotherUser(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	c := srv.Client()
	s, err := New(c, Options{EncryptionKeys: [][]byte{bytes.Repeat([]byte{1}, 32)}})
	if err != nil {
		t.Fatal(err)
	}
	alice := exchange.StoreKey{Namespace: "ns", User: exchange.UserKey{Issuer: "https://idp.example.com", Subject: "alice"}}
	for what, user := range map[string]exchange.UserKey{
		"another subject": {Issuer: "https://idp.example.com", Subject: "bob"},
		"another issuer":  {Issuer: "https://other.example.com", Subject: "alice"},
	} {
		plain, err := seal.EncodeSession(&exchange.Session{
			Credentials: aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "secret", CanExpire: true, Expires: time.Now().Add(time.Hour)},
			Issuer:      user.Issuer,
			Subject:     user.Subject,
		})
		if err != nil {
			t.Fatal(err)
		}
		name := s.names.Session(alice)
		if err := c.Set(context.Background(), name, s.sealer.Seal(name, plain), time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Load(context.Background(), alice); got != nil || err != nil {
			t.Errorf("%s: alice's Load = %v, %v; want nil, nil", what, got, err)
		}
	}
	if st := s.Stats(); st.Rejected != 2 || st.Hits != 0 {
		t.Fatalf("Stats = %+v, want two rejected", st)
	}
}

// TestSessionSealedBeforeUserIDs: a session encoded before sessions
// carried the Identity Center IDs still decodes, with the IDs empty.
func TestSessionSealedBeforeUserIDs(t *testing.T) {
	t.Parallel()
	old := `{"access_key_id":"ASIAOLD","secret_access_key":"secret","session_token":"token","source":"tipkit","can_expire":true,` +
		`"expires":"2030-01-02T03:04:05Z","identity_context":"context","context_expires":"2030-01-02T04:04:05Z",` +
		`"issuer":"https://idp.example.com","subject":"alice"}`
	s, ok := seal.DecodeSession([]byte(old))
	if !ok || s.Credentials.AccessKeyID != "ASIAOLD" || s.Subject != "alice" || s.IdentityContext != "context" ||
		s.UserID != "" || s.IdentityStoreID != "" {
		t.Fatalf("decodeSession = %+v, %t", s, ok)
	}
	s.UserID, s.IdentityStoreID = "94482488-3041-7026-18f3-be45837cd0e4", "d-1234567890"
	b, err := seal.EncodeSession(s)
	if err != nil {
		t.Fatal(err)
	}
	if again, ok := seal.DecodeSession(b); !ok || again.UserID != s.UserID || again.IdentityStoreID != s.IdentityStoreID {
		t.Fatalf("round trip = %+v, %t", again, ok)
	}
}

// TestSealOpen checks the sealed layout without Redis.
func TestSealOpen(t *testing.T) {
	t.Parallel()
	k := bytes.Repeat([]byte{1}, 32)
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer c.Close()
	s, err := New(c, Options{EncryptionKeys: [][]byte{k}})
	if err != nil {
		t.Fatal(err)
	}
	sealed := s.sealer.Seal("a", []byte("plain"))
	id := seal.KeyIDOf(k)
	if sealed[0] != seal.FormatVersion || !bytes.Equal(sealed[1:5], id[:]) {
		t.Fatalf("header % x, want version 1 and the key's ID", sealed[:5])
	}
	if len(sealed) != 1+4+12+len("plain")+16 {
		t.Fatalf("sealed length %d", len(sealed))
	}
	if plain, ok := s.sealer.Open("a", sealed); !ok || string(plain) != "plain" {
		t.Fatalf("opened = %q, %t", plain, ok)
	}
	if _, ok := s.sealer.Open("b", sealed); ok {
		t.Fatal("a value opened under another name")
	}
	if again := s.sealer.Seal("a", []byte("plain")); bytes.Equal(again[5:17], sealed[5:17]) {
		t.Fatal("two seals with one nonce")
	}
}
