// Command quickstart runs trusted identity propagation end to end on this
// machine, with no AWS account: it starts tiptest (a local identity
// provider, IAM Identity Center and STS), exchanges a token for each of two
// users, calls STS as each user, renews one user's credentials without a
// token, and shows Identity Center's one-exchange-per-token rule at work.
//
// It exits 0 when every check held, 1 otherwise.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/tiptest"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart: FAILED:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer) error {
	env, err := tiptest.NewEnv()
	if err != nil {
		return err
	}
	defer env.Close()
	fmt.Fprintf(w, "local identity provider  %s\nlocal AWS (IAM Identity Center + STS)  %s\n\n", env.IdP.Issuer(), env.AWS.URL())

	// The server's configuration: which Identity Center application trusts
	// the IdP, which role users act through, and the application role that
	// signs the exchange (so the server needs no AWS keys of its own).
	base := env.Config()
	base.Credentials = nil
	x, err := exchange.New(exchange.Options{
		ApplicationArn:     env.ApplicationArn,
		AccessRoleArn:      env.AccessRoleArn,
		ApplicationRoleArn: env.ApplicationRoleArn,
		Config:             base,
		Now:                env.Clock.Now,
	})
	if err != nil {
		return err
	}

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tACCESS KEY\tSTS SAYS THE CALLER IS\tTIPTEST SAYS THE KEY BELONGS TO")
	sessions := map[string]*exchange.Session{}
	for _, user := range []string{"alice", "bob"} {
		s, err := x.Exchange(ctx, env.IdP.Token(user))
		if err != nil {
			return fmt.Errorf("exchange for %s: %w", user, err)
		}
		sessions[user] = s
		arn, owner, err := whoAmI(ctx, env, s.Credentials)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", user, s.Credentials.AccessKeyID, arn, owner)
		if owner != user {
			return fmt.Errorf("%s received credentials of %q", user, owner)
		}
	}
	tw.Flush()

	// Ten minutes later, alice's credentials are renewed with the identity
	// context already held: one AssumeRole, no token spent.
	env.Clock.Advance(10 * time.Minute)
	before := env.AWS.Calls("CreateTokenWithIAM")
	renewed, err := x.Renew(ctx, sessions["alice"], "")
	if err != nil {
		return fmt.Errorf("renewal: %w", err)
	}
	if _, owner, err := whoAmI(ctx, env, renewed.Credentials); err != nil || owner != "alice" {
		return fmt.Errorf("renewed credentials belong to %q (%v)", owner, err)
	}
	if env.AWS.Calls("CreateTokenWithIAM") != before {
		return errors.New("renewal spent a token")
	}
	fmt.Fprintf(w, "\nrenewed alice without her token: new key %s, valid until %s\n",
		renewed.Credentials.AccessKeyID, renewed.Expires().Format(time.Kitchen))

	// Identity Center exchanges a token once: the same token again is
	// refused before any call.
	tok := env.IdP.Token("carol")
	if _, err := x.Exchange(ctx, tok); err != nil {
		return err
	}
	_, err = x.Exchange(ctx, tok)
	if !errors.Is(err, exchange.ErrReauthenticate) {
		return fmt.Errorf("a token exchanged twice: %v", err)
	}
	fmt.Fprintf(w, "carol's token a second time: refused (%v)\n\n", err)

	fmt.Fprintln(w, "AWS calls:")
	for _, op := range []string{"AssumeRoleWithWebIdentity", "CreateTokenWithIAM", "AssumeRole", "GetCallerIdentity"} {
		fmt.Fprintf(w, "  %-26s %d\n", op, env.AWS.Calls(op))
	}
	fmt.Fprintln(w, "\nOK: each user got their own credentials")
	return nil
}

// whoAmI calls STS GetCallerIdentity with creds and returns the caller's
// ARN and the user tiptest issued creds for.
func whoAmI(ctx context.Context, env *tiptest.Env, creds aws.Credentials) (arn, owner string, err error) {
	cfg := env.Config()
	cfg.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil })
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", "", fmt.Errorf("GetCallerIdentity: %w", err)
	}
	owner, _ = env.AWS.UserFor(creds.AccessKeyID)
	return aws.ToString(out.Arn), owner, nil
}
