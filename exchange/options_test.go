package exchange

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssooidc"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

const (
	testApp     = "arn:aws:sso::123456789012:application/ssoins-1111111111111111/apl-2222222222222222"
	testAccess  = "arn:aws:iam::123456789012:role/access"
	testAppRole = "arn:aws:iam::123456789012:role/application"
)

// nopClients satisfy the client interfaces for validation tests; they are
// never called.
type nopClients struct{}

func (nopClients) CreateTokenWithIAM(context.Context, *ssooidc.CreateTokenWithIAMInput, ...func(*ssooidc.Options)) (*ssooidc.CreateTokenWithIAMOutput, error) {
	return nil, errors.New("not called")
}

func (nopClients) AssumeRole(context.Context, *sts.AssumeRoleInput, ...func(*sts.Options)) (*sts.AssumeRoleOutput, error) {
	return nil, errors.New("not called")
}

func validOptions() Options {
	return Options{
		ApplicationArn: testApp,
		AccessRoleArn:  testAccess,
		SSOOIDCClient:  nopClients{},
		STSClient:      nopClients{},
	}
}

func TestNewValidation(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Options)
		want error
	}{
		{"no application ARN", func(o *Options) { o.ApplicationArn = "" }, errApplicationArn},
		{"application ARN not an ARN", func(o *Options) { o.ApplicationArn = "my-app" }, errApplicationArn},
		{"application ARN of a role", func(o *Options) { o.ApplicationArn = testAccess }, errApplicationArn},
		{"application ARN without application", func(o *Options) { o.ApplicationArn = "arn:aws:sso::123456789012:application/" }, errApplicationArn},
		{"no access role", func(o *Options) { o.AccessRoleArn = "" }, errAccessRoleArn},
		{"access role not an ARN", func(o *Options) { o.AccessRoleArn = "access" }, errAccessRoleArn},
		{"access role is a user", func(o *Options) { o.AccessRoleArn = "arn:aws:iam::123456789012:user/bob" }, errAccessRoleArn},
		{"application role not an ARN", func(o *Options) { o.ApplicationRoleArn = "app-role" }, errApplicationRoleArn},
		{"application role equals access role", func(o *Options) { o.ApplicationRoleArn = testAccess }, errSameRole},
		{"no application role, no SSO OIDC client", func(o *Options) { o.SSOOIDCClient = nil }, errClients},
		{"no application role, no STS client", func(o *Options) { o.STSClient = nil }, errClients},
		{"application role without region", func(o *Options) { o.ApplicationRoleArn = testAppRole }, errRegion},
		{"duration too short", func(o *Options) { o.Duration = 14 * time.Minute }, errDuration},
		{"duration too long", func(o *Options) { o.Duration = 12*time.Hour + time.Second }, errDuration},
		{"duration not whole seconds", func(o *Options) { o.Duration = 20*time.Minute + time.Millisecond }, errDuration},
		{"duration negative", func(o *Options) { o.Duration = -time.Hour }, errDuration},
		{"role chaining above one hour", func(o *Options) {
			o.ApplicationRoleArn, o.Config.Region, o.Duration = testAppRole, "us-east-1", time.Hour+time.Second
		}, errRoleChaining},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := validOptions()
			tt.edit(&o)
			x, err := New(o)
			if x != nil || !errors.Is(err, tt.want) {
				t.Fatalf("New() = %v, %v; want error %v", x, err, tt.want)
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("%v does not match ErrConfig", err)
			}
		})
	}
}

func TestNewAcceptsValidOptions(t *testing.T) {
	tests := map[string]func(*Options){
		"both clients":      func(*Options) {},
		"longest duration":  func(o *Options) { o.Duration = 12 * time.Hour },
		"shortest duration": func(o *Options) { o.Duration = 15 * time.Minute },
		"application role, one hour": func(o *Options) {
			o.ApplicationRoleArn, o.Config.Region, o.Duration = testAppRole, "us-east-1", time.Hour
		},
		"application role, built clients": func(o *Options) {
			o.ApplicationRoleArn, o.Config.Region, o.SSOOIDCClient, o.STSClient = testAppRole, "us-east-1", nil, nil
		},
		"other partition": func(o *Options) {
			o.ApplicationArn = "arn:aws-us-gov:sso::123456789012:application/ssoins-1/apl-2"
			o.AccessRoleArn = "arn:aws-us-gov:iam::123456789012:role/path/access"
		},
	}
	for name, edit := range tests {
		t.Run(name, func(t *testing.T) {
			o := validOptions()
			edit(&o)
			if _, err := New(o); err != nil {
				t.Fatalf("New() = %v", err)
			}
		})
	}
}

func TestNewProviderNeedsTokenProvider(t *testing.T) {
	_, err := NewProvider(validOptions())
	if !errors.Is(err, errWebTokenProvider) || !errors.Is(err, ErrConfig) {
		t.Fatalf("NewProvider without WebTokenProvider = %v", err)
	}
	o := validOptions()
	o.WebTokenProvider = func(context.Context) (string, error) { return "", nil }
	o.AccessRoleArn = ""
	if _, err := NewProvider(o); !errors.Is(err, errAccessRoleArn) {
		t.Fatalf("NewProvider with a bad access role = %v", err)
	}
}

func TestDefaults(t *testing.T) {
	x, err := New(validOptions())
	if err != nil {
		t.Fatal(err)
	}
	if x.o.Duration != DefaultDuration || x.o.CredentialsExpiryWindow != defaultCredentialsExpiryWindow || x.o.MaxAttempts != defaultMaxAttempts {
		t.Fatalf("defaults not applied: %+v", x.o)
	}
	s := &Session{Issuer: "https://idp.example.com", Subject: "alice"}
	name, err := x.sessionName(s)
	if err != nil || !validSessionName(name) || len(name) != len("tipkit-")+24 {
		t.Fatalf("default session name %q, %v", name, err)
	}
	other, _ := x.sessionName(&Session{Issuer: "https://idp.example.com", Subject: "bob"})
	if other == name {
		t.Fatal("two users got the same default session name")
	}
}
