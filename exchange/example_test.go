package exchange_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/tiptest"
)

// A server exchanges each user's token once and keeps the session.
func ExampleExchanger_Exchange() {
	env, err := tiptest.NewEnv() // a local IdP, IAM Identity Center and STS
	if err != nil {
		log.Fatal(err)
	}
	defer env.Close()

	cfg := env.Config() // in production: aws.Config{Region: <Identity Center's region>}
	cfg.Credentials = nil
	x, err := exchange.New(exchange.Options{
		ApplicationArn:     env.ApplicationArn,
		AccessRoleArn:      env.AccessRoleArn,
		ApplicationRoleArn: env.ApplicationRoleArn,
		Config:             cfg,
	})
	if err != nil {
		log.Fatal(err)
	}

	session, err := x.Exchange(context.Background(), env.IdP.Token("alice"))
	if err != nil {
		log.Fatal(err)
	}
	user, _ := env.AWS.UserFor(session.Credentials.AccessKeyID)
	fmt.Println("credentials of", user, "valid for", time.Until(session.Expires()).Round(time.Minute))
	// Output: credentials of alice valid for 15m0s
}

// Renewing spends no token while the identity context is valid; when nothing
// is left to renew with, the user must sign in again.
func ExampleExchanger_Renew() {
	env, err := tiptest.NewEnv()
	if err != nil {
		log.Fatal(err)
	}
	defer env.Close()
	x, err := exchange.New(exchange.Options{
		ApplicationArn: env.ApplicationArn,
		AccessRoleArn:  env.AccessRoleArn,
		SSOOIDCClient:  ssooidcClient(env),
		STSClient:      sts.NewFromConfig(env.Config()),
		Config:         env.Config(),
		Now:            env.Clock.Now,
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	token := env.IdP.Token("bob")
	session, err := x.Exchange(ctx, token)
	if err != nil {
		log.Fatal(err)
	}

	env.Clock.Advance(14 * time.Minute)
	session, err = x.Renew(ctx, session, "")
	fmt.Println("renewed with the identity context:", err == nil, "- exchanges so far:", env.AWS.Calls("CreateTokenWithIAM"))

	env.Clock.Advance(2 * time.Hour) // identity context expired, no refresh grant
	_, err = x.Renew(ctx, session, token)
	fmt.Println("renewal with the spent token:", errors.Is(err, exchange.ErrReauthenticate))
	// Output:
	// renewed with the identity context: true - exchanges so far: 1
	// renewal with the spent token: true
}

// A command-line tool acting as one user hands a Provider to its clients.
func ExampleNewProvider() {
	env, err := tiptest.NewEnv()
	if err != nil {
		log.Fatal(err)
	}
	defer env.Close()

	cfg := env.Config()
	cfg.Credentials = nil
	provider, err := exchange.NewProvider(exchange.Options{
		WebTokenProvider: func(context.Context) (string, error) {
			return env.IdP.Token("carol"), nil // e.g. read from the IdP's device flow
		},
		ApplicationArn:     env.ApplicationArn,
		AccessRoleArn:      env.AccessRoleArn,
		ApplicationRoleArn: env.ApplicationRoleArn,
		Config:             cfg,
	})
	if err != nil {
		log.Fatal(err)
	}

	userCfg := env.Config()
	userCfg.Credentials = provider
	out, err := sts.NewFromConfig(userCfg).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(aws.ToString(out.Account))
	// Output: 123456789012
}

// A server that handles many users keeps their credentials in a Cache: a
// user's concurrent first requests share one exchange, and later ones are
// served from memory, renewed ahead of expiry.
func ExampleCache() {
	env, err := tiptest.NewEnv()
	if err != nil {
		log.Fatal(err)
	}
	defer env.Close()
	x, err := exchange.New(exchange.Options{
		ApplicationArn:     env.ApplicationArn,
		AccessRoleArn:      env.AccessRoleArn,
		ApplicationRoleArn: env.ApplicationRoleArn,
		Config:             env.Config(),
	})
	if err != nil {
		log.Fatal(err)
	}
	cache, err := exchange.NewCache(x, exchange.CacheOptions{MaxUsers: 1000})
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()

	// The user's token was verified first: its issuer and subject name the user.
	token := env.IdP.Token("alice")
	user := exchange.UserKey{Issuer: env.IdP.Issuer(), Subject: "alice"}
	for range 3 {
		creds, _, err := cache.Credentials(context.Background(), user, token)
		if err != nil {
			log.Fatal(err)
		}
		cfg := env.Config() // in production: the base configuration of the user's clients
		cfg.Credentials = creds
		out, err := sts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(aws.ToString(out.UserId) != "")
	}
	fmt.Println("exchanges:", cache.Stats().Exchanges)
	// Output:
	// true
	// true
	// true
	// exchanges: 1
}

// Options.Session shapes each user's session from the claims of the
// user's token: session tags (here the external ID an Amazon Q Business
// data accessor requires, and the user's department for attribute-based
// access control), a source identity that CloudTrail shows across role
// chains, and a session policy. Renewals keep the same shape. An error
// refuses the user (ErrRefused, 403 through the middleware).
func ExampleOptions_session() {
	env, err := tiptest.NewEnv()
	if err != nil {
		log.Fatal(err)
	}
	defer env.Close()

	cfg := env.Config()
	cfg.Credentials = nil
	x, err := exchange.New(exchange.Options{
		ApplicationArn:     env.ApplicationArn,
		AccessRoleArn:      env.AccessRoleArn, // its trust policy allows sts:TagSession and sts:SetSourceIdentity
		ApplicationRoleArn: env.ApplicationRoleArn,
		Config:             cfg,
		Session: func(claims map[string]any) (exchange.SessionOptions, error) {
			dept, ok := claims["department"].(string)
			if !ok {
				return exchange.SessionOptions{}, errors.New("no department claim")
			}
			sub, _ := claims["sub"].(string)
			return exchange.SessionOptions{
				Tags: map[string]string{
					"qbusiness-dataaccessor:ExternalId": "tenant-a",
					"department":                        dept,
				},
				SourceIdentity: sub,
				Policy:         `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"s3:DeleteObject","Resource":"*"}]}`,
			}, nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}

	session, err := x.Exchange(context.Background(), env.IdP.Token("alice", tiptest.WithClaims(map[string]any{"department": "finance"})))
	if err != nil {
		log.Fatal(err)
	}
	info, _ := env.AWS.Session(session.Credentials.AccessKeyID) // what STS attached to the session
	fmt.Println(info.Tags["department"], info.Tags["qbusiness-dataaccessor:ExternalId"], info.SourceIdentity)

	_, err = x.Exchange(context.Background(), env.IdP.Token("bob")) // no department claim
	fmt.Println(errors.Is(err, exchange.ErrRefused))
	// Output:
	// finance tenant-a alice
	// true
}
