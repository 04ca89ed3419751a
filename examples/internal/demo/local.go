package demo

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tipkit/tipkit/accessgrants"
	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/tiptest"
)

// LocalBucket is the bucket of the local stand-in.
const LocalBucket = "tipkit-demo"

// TokenLifetime is how long the printed dev tokens, and the users'
// Identity Center sessions behind them, stay valid.
const TokenLifetime = 12 * time.Hour

// User is one seeded user of the local stand-in.
type User struct {
	// Name is the user's name, the subject of their tokens and their user
	// in the local IAM Identity Center.
	Name string
	// Prefix is the one prefix of the bucket granted to the user.
	Prefix string
	// Files are the objects seeded under Prefix, key to content.
	Files map[string]string
	// Token is a dev token of the user, valid for TokenLifetime.
	Token string
}

// Keys returns the keys of u's seeded files, sorted.
func (u User) Keys() []string {
	keys := make([]string, 0, len(u.Files))
	for k := range u.Files {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// seedUsers are the two users of the local stand-in, each granted their own
// prefix, with their own files.
func seedUsers() []User {
	return []User{
		{Name: "alice", Prefix: "alice/", Files: map[string]string{
			"alice/notes.txt": "Alice's notes: the examples ship on Friday.\n",
			"alice/todo.txt":  "- review the gin example\n- write the README section\n",
		}},
		{Name: "bob", Prefix: "bob/", Files: map[string]string{
			"bob/plan.txt":   "Bob's plan: move the reports to S3.\n",
			"bob/budget.csv": "quarter,amount\nQ1,1200\nQ2,1350\n",
		}},
	}
}

// Local is the local stand-in for AWS with its two seeded users, and the
// middleware that trusts its identity provider.
type Local struct {
	Env        *tiptest.Env
	Middleware *middleware.Middleware
	// Grants obtains the users' credentials of S3 Access Grants. It finds
	// the account with STS GetCallerIdentity, as it does on AWS without
	// TIPKIT_ACCOUNT_ID.
	Grants *accessgrants.Cache
	Bucket string
	Users  []User
}

// StartLocal starts tiptest (a local identity provider, IAM Identity Center,
// STS, S3 Access Grants and S3), seeds the bucket with two users' files and grants, mints a
// dev token for each user, and builds the middleware, with realm as the
// realm of its challenges. Close stops it all.
func StartLocal(ctx context.Context, realm string) (*Local, error) {
	return startLocal(ctx, realm, nil)
}

// startLocal is StartLocal with the middleware's options adjusted by
// adjust, when not nil.
func startLocal(ctx context.Context, realm string, adjust func(*middleware.Options) error) (*Local, error) {
	env, err := tiptest.NewEnv(tiptest.WithTokenTTL(TokenLifetime))
	if err != nil {
		return nil, err
	}
	l := &Local{Env: env, Bucket: LocalBucket, Users: seedUsers()}
	if err := seed(env, l.Bucket, l.Users); err != nil {
		env.Close()
		return nil, err
	}
	for i := range l.Users {
		l.Users[i].Token = env.IdP.Token(l.Users[i].Name, tiptest.WithLifetime(TokenLifetime))
	}

	// The server has no AWS keys of its own here: the application role,
	// assumed with each user's token, signs the exchange.
	base := env.Config()
	base.Credentials = nil
	o := middleware.Options{
		Issuer:   env.IdP.Issuer(),
		Audience: []string{env.IdP.Audience()},
		Exchange: exchange.Options{
			ApplicationArn:     env.ApplicationArn,
			AccessRoleArn:      env.AccessRoleArn,
			ApplicationRoleArn: env.ApplicationRoleArn,
			Config:             base,
		},
		AWSConfig: base,
		Realm:     realm,
	}
	if adjust != nil {
		err = adjust(&o)
	}
	if err == nil {
		l.Grants, err = accessgrants.New(accessgrants.Options{Now: env.Clock.Now})
	}
	if err == nil {
		l.Middleware, err = middleware.New(ctx, o)
	}
	if err != nil {
		env.Close()
		return nil, err
	}
	return l, nil
}

// App returns what a router needs to serve the local bucket: an S3 client
// of the local S3, path-style as it needs.
func (l *Local) App() App {
	return App{Middleware: l.Middleware, Bucket: l.Bucket,
		S3: l.Grants.S3Client(l.Env.Config(), func(o *s3.Options) { o.UsePathStyle = true })}
}

// Close stops the middleware and the local services.
func (l *Local) Close() error {
	l.Middleware.Close()
	return l.Env.Close()
}

// PrintCurl prints, for the server at base, where everything runs and the
// curl commands that show each user reaching only their own files.
func (l *Local) PrintCurl(w io.Writer, name, base string) {
	alice, bob := l.Users[0], l.Users[1]
	fmt.Fprintf(w, "%s: serving %s\n", name, base)
	fmt.Fprintf(w, "  local identity provider %s\n  local AWS               %s (bucket %s)\n\n", l.Env.IdP.Issuer(), l.Env.AWS.URL(), l.Bucket)
	fmt.Fprintf(w, "Two users, one server, one IAM role: S3 Access Grants lets each user reach only their own prefix.\n")
	fmt.Fprintf(w, "Paste into another shell (the tokens are valid for %s):\n\n", TokenLifetime)
	fmt.Fprintf(w, "  ALICE=%s\n  BOB=%s\n\n", shellQuote(alice.Token), shellQuote(bob.Token))
	fmt.Fprintf(w, "  curl -H \"Authorization: Bearer $ALICE\" '%s/files?prefix=%s'\n", base, alice.Prefix)
	fmt.Fprintf(w, "  curl -H \"Authorization: Bearer $BOB\" '%s/files?prefix=%s'\n\n", base, bob.Prefix)
	fmt.Fprintf(w, "  curl -H \"Authorization: Bearer $ALICE\" %s/files/%s\n", base, alice.Keys()[0])
	fmt.Fprintf(w, "  curl -H \"Authorization: Bearer $ALICE\" %s/files/%s   # 403: %s's file\n", base, bob.Keys()[0], bob.Name)
	fmt.Fprintf(w, "  curl -X PUT -H 'Content-Type: text/plain' --data-binary 'hello' -H \"Authorization: Bearer $ALICE\" %s/files/%shello.txt\n\n", base, alice.Prefix)
	fmt.Fprintf(w, "Ctrl-C stops the server.\n")
}
