package exchange_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/tiptest"
)

// BenchmarkExchange measures one exchange per new user against tiptest over
// loopback, through the real SDK clients, and reports the AWS calls each
// user costs. Token minting is outside the timer.
func BenchmarkExchange(b *testing.B) {
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			env, err := tiptest.NewEnv()
			if err != nil {
				b.Fatal(err)
			}
			defer env.Close()
			x, err := exchange.New(options(env, m.appRole))
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				tok := env.IdP.Token("user" + strconv.Itoa(i))
				b.StartTimer()
				if _, err := x.Exchange(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			for _, op := range []string{"AssumeRoleWithWebIdentity", "CreateTokenWithIAM", "AssumeRole"} {
				b.ReportMetric(float64(env.AWS.Calls(op))/float64(b.N), op+"/user")
			}
		})
	}
}

// BenchmarkRenew measures a renewal with the identity context: one AssumeRole.
func BenchmarkRenew(b *testing.B) {
	env, err := tiptest.NewEnv()
	if err != nil {
		b.Fatal(err)
	}
	defer env.Close()
	x, err := exchange.New(options(env, false))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	s, err := x.Exchange(ctx, env.IdP.Token("alice"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := x.Renew(ctx, s, ""); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCacheHit measures Credentials for users whose credentials are
// held, from every core at once: the hot path of a busy server.
func BenchmarkCacheHit(b *testing.B) {
	env, err := tiptest.NewEnv()
	if err != nil {
		b.Fatal(err)
	}
	defer env.Close()
	x, err := exchange.New(options(env, true))
	if err != nil {
		b.Fatal(err)
	}
	c, err := exchange.NewCache(x, exchange.CacheOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	const users = 64
	keys := make([]exchange.UserKey, users)
	tokens := make([]string, users)
	for i := range users {
		keys[i] = exchange.UserKey{Issuer: env.IdP.Issuer(), Subject: "user" + strconv.Itoa(i)}
		tokens[i] = env.IdP.Token(keys[i].Subject)
		if _, _, err := c.Credentials(context.Background(), keys[i], tokens[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for i := 0; pb.Next(); i++ {
			if _, _, err := c.Credentials(ctx, keys[i%users], tokens[i%users]); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
