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
