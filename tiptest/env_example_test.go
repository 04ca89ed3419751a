package tiptest_test

import (
	"context"
	"fmt"
	"log"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssooidc"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"

	"github.com/tipkit/tipkit/tiptest"
)

// ExampleNewEnv exchanges a token of the local IdP for identity-enhanced
// credentials with the unmodified AWS SDK clients, then asks STS who they
// belong to.
func ExampleNewEnv() {
	env, err := tiptest.NewEnv()
	if err != nil {
		log.Fatal(err)
	}
	defer env.Close()
	ctx := context.Background()
	cfg := env.Config() // the server user's keys, BaseEndpoint = env.AWS.URL()

	// 1. The user's token buys an Identity Center identity context.
	tok, err := ssooidc.NewFromConfig(cfg).CreateTokenWithIAM(ctx, &ssooidc.CreateTokenWithIAMInput{
		ClientId:  aws.String(env.ApplicationArn),
		GrantType: aws.String("urn:ietf:params:oauth:grant-type:jwt-bearer"),
		Assertion: aws.String(env.IdP.Token("alice")),
	})
	if err != nil {
		log.Fatal(err)
	}

	// 2. The identity context buys an identity-enhanced role session.
	stsClient := sts.NewFromConfig(cfg)
	role, err := stsClient.AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn:         aws.String(env.AccessRoleArn),
		RoleSessionName: aws.String("alice"),
		DurationSeconds: aws.Int32(900),
		ProvidedContexts: []ststypes.ProvidedContext{{
			ProviderArn:      aws.String("arn:aws:iam::aws:contextProvider/IdentityCenter"),
			ContextAssertion: tok.AwsAdditionalDetails.IdentityContext,
		}},
	})
	if err != nil {
		log.Fatal(err)
	}

	// 3. Who is calling with these credentials?
	userCfg := cfg.Copy()
	userCfg.Credentials = aws.NewCredentialsCache(aws.CredentialsProviderFunc(
		func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{
				AccessKeyID:     aws.ToString(role.Credentials.AccessKeyId),
				SecretAccessKey: aws.ToString(role.Credentials.SecretAccessKey),
				SessionToken:    aws.ToString(role.Credentials.SessionToken),
			}, nil
		}))
	id, err := sts.NewFromConfig(userCfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		log.Fatal(err)
	}
	user, _ := env.AWS.UserFor(aws.ToString(role.Credentials.AccessKeyId))
	fmt.Println(aws.ToString(id.Arn))
	fmt.Println("user:", user)
	fmt.Println("CreateTokenWithIAM calls:", env.AWS.Calls("CreateTokenWithIAM"))
	// Output:
	// arn:aws:sts::123456789012:assumed-role/tipkit-access/alice
	// user: alice
	// CreateTokenWithIAM calls: 1
}
