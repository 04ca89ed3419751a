package tiptest_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3control"
	s3ctypes "github.com/aws/aws-sdk-go-v2/service/s3control/types"
	"github.com/aws/aws-sdk-go-v2/service/ssooidc"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"

	"github.com/tipkit/tipkit/tiptest"
)

// s3ClientFor exchanges a token of user for an identity-enhanced session
// of the access role, asks S3 Access Grants (S3 Control GetDataAccess) for
// credentials to read the user's folder, and returns an s3 client signed
// with them.
func s3ClientFor(env *tiptest.Env, user string) *s3.Client {
	ctx := context.Background()
	cfg := env.Config()
	tok, err := ssooidc.NewFromConfig(cfg).CreateTokenWithIAM(ctx, &ssooidc.CreateTokenWithIAMInput{
		ClientId:  aws.String(env.ApplicationArn),
		GrantType: aws.String("urn:ietf:params:oauth:grant-type:jwt-bearer"),
		Assertion: aws.String(env.IdP.Token(user)),
	})
	if err != nil {
		log.Fatal(err)
	}
	role, err := sts.NewFromConfig(cfg).AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn:         aws.String(env.AccessRoleArn),
		RoleSessionName: aws.String(user),
		ProvidedContexts: []ststypes.ProvidedContext{{
			ProviderArn:      aws.String("arn:aws:iam::aws:contextProvider/IdentityCenter"),
			ContextAssertion: tok.AwsAdditionalDetails.IdentityContext,
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	session := cfg.Copy()
	session.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(role.Credentials.AccessKeyId),
		aws.ToString(role.Credentials.SecretAccessKey), aws.ToString(role.Credentials.SessionToken))
	data, err := s3control.NewFromConfig(session).GetDataAccess(ctx, &s3control.GetDataAccessInput{
		AccountId:  aws.String(env.AWS.AccountID()),
		Target:     aws.String("s3://" + env.Bucket + "/" + user + "/*"),
		Permission: s3ctypes.PermissionRead,
	})
	if err != nil {
		log.Fatal(err)
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = true
		o.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(data.Credentials.AccessKeyId),
			aws.ToString(data.Credentials.SecretAccessKey), aws.ToString(data.Credentials.SessionToken))
	})
}

// ExampleAWS_Grant seeds the Env's bucket and grants two users a folder
// each: through the same role, each obtains from S3 Access Grants
// credentials for their own folder only, and S3 refuses them the other's.
func ExampleAWS_Grant() {
	env, err := tiptest.NewEnv()
	if err != nil {
		log.Fatal(err)
	}
	defer env.Close()
	for _, key := range []string{"alice/notes.txt", "alice/todo.txt", "bob/plan.md"} {
		if err := env.AWS.PutObject(env.Bucket, key, []byte("…")); err != nil {
			log.Fatal(err)
		}
	}
	// Grants name the users' IDs in the identity store, as on AWS.
	env.AWS.Grant(env.Bucket, "alice/", env.AWS.UserID("alice"), tiptest.AccessReadWrite)
	env.AWS.Grant(env.Bucket, "bob/", env.AWS.UserID("bob"), tiptest.AccessRead)

	ctx := context.Background()
	for _, user := range []string{"alice", "bob"} {
		client := s3ClientFor(env, user)
		out, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
			Bucket: aws.String(env.Bucket),
			Prefix: aws.String(user + "/"),
		})
		if err != nil {
			log.Fatal(err)
		}
		for _, o := range out.Contents {
			fmt.Println(user, "sees", aws.ToString(o.Key))
		}
	}

	_, err = s3ClientFor(env, "bob").GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(env.Bucket),
		Key:    aws.String("alice/notes.txt"),
	})
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		fmt.Println("bob reads alice/notes.txt:", apiErr.ErrorCode())
	}
	// Output:
	// alice sees alice/notes.txt
	// alice sees alice/todo.txt
	// bob sees bob/plan.md
	// bob reads alice/notes.txt: AccessDenied
}
