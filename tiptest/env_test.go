package tiptest_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/tipkit/tipkit/tiptest"
)

func TestEnv(t *testing.T) {
	env := tiptest.New(t, tiptest.WithRegion("ap-southeast-2"), tiptest.WithAudience("aud-1"), nil)
	want := map[string]string{
		env.ApplicationArn:     "arn:aws:sso::123456789012:application/ssoins-7223a5f0e0c6f1b2/apl-0a1b2c3d4e5f6a7b",
		env.AccessRoleArn:      "arn:aws:iam::123456789012:role/tipkit-access",
		env.ApplicationRoleArn: "arn:aws:iam::123456789012:role/tipkit-application",
	}
	for got, w := range want {
		if got != w {
			t.Errorf("%q, want %q", got, w)
		}
	}
	if env.IdP.Audience() != "aud-1" || env.Clock == nil || env.IdP.Clock() != env.Clock {
		t.Fatalf("audience %q clock %p / %p", env.IdP.Audience(), env.Clock, env.IdP.Clock())
	}
	cfg := env.Config()
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != "ap-southeast-2" || aws.ToString(cfg.BaseEndpoint) != env.AWS.URL() ||
		creds.AccessKeyID != env.AWS.ServerCredentials().AccessKeyID || cfg.Retryer().MaxAttempts() != 3 {
		t.Fatalf("config region %q endpoint %q key %q", cfg.Region, aws.ToString(cfg.BaseEndpoint), creds.AccessKeyID)
	}
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(id.Arn) != env.AWS.ServerUserArn() {
		t.Fatalf("caller %q", aws.ToString(id.Arn))
	}
	if err := env.Close(); err != nil {
		t.Fatal(err)
	}
	if err := env.Close(); err != nil { // and once more on cleanup
		t.Fatal(err)
	}
}

func TestNewEnvInvalidRegion(t *testing.T) {
	if env, err := tiptest.NewEnv(tiptest.WithRegion("nowhere")); err == nil {
		_ = env.Close()
		t.Fatal("NewEnv accepted an invalid region")
	}
}
