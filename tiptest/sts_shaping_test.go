package tiptest_test

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"

	"github.com/tipkit/tipkit/tiptest"
)

// shapedAssume assumes the access role for user's identity context with
// the shaping edit makes to the input.
func shapedAssume(t *testing.T, env *tiptest.Env, user string, edit func(*sts.AssumeRoleInput)) (*sts.AssumeRoleOutput, error) {
	t.Helper()
	in := &sts.AssumeRoleInput{
		RoleArn:          aws.String(env.AccessRoleArn),
		RoleSessionName:  aws.String(user),
		DurationSeconds:  aws.Int32(900),
		ProvidedContexts: awsContexts(awsIdentityContext(t, env, user), 1),
	}
	edit(in)
	return awsSTS(env, nil).AssumeRole(bg, in)
}

func stsTags(kv ...string) []ststypes.Tag {
	var tags []ststypes.Tag
	for i := 0; i+1 < len(kv); i += 2 {
		tags = append(tags, ststypes.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return tags
}

const denyDataAccess = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},
 {"Effect":"Deny","Action":["s3:GetDataAccess"],"Resource":"*"}]}`

func TestAssumeRoleSessionShape(t *testing.T) {
	env := tiptest.New(t)
	arn := "arn:aws:iam::123456789012:policy/ReadOnly"
	out, err := shapedAssume(t, env, "alice", func(in *sts.AssumeRoleInput) {
		in.Tags = stsTags("qbusiness-dataaccessor:ExternalId", "ext-1", "team", "data science")
		in.TransitiveTagKeys = []string{"team"}
		in.SourceIdentity = aws.String("alice@example.com")
		in.Policy = aws.String(denyDataAccess)
		in.PolicyArns = []ststypes.PolicyDescriptorType{{Arn: aws.String(arn)}}
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.SourceIdentity) != "alice@example.com" {
		t.Fatalf("answer: source identity %q", aws.ToString(out.SourceIdentity))
	}
	info, ok := env.AWS.Session(aws.ToString(out.Credentials.AccessKeyId))
	want := tiptest.SessionInfo{
		User:              "alice",
		Tags:              map[string]string{"qbusiness-dataaccessor:ExternalId": "ext-1", "team": "data science"},
		TransitiveTagKeys: []string{"team"},
		SourceIdentity:    "alice@example.com",
		Policy:            denyDataAccess,
		PolicyArns:        []string{arn},
	}
	if !ok || info.User != want.User || !maps.Equal(info.Tags, want.Tags) || !slices.Equal(info.TransitiveTagKeys, want.TransitiveTagKeys) ||
		info.SourceIdentity != want.SourceIdentity || info.Policy != want.Policy || !slices.Equal(info.PolicyArns, want.PolicyArns) {
		t.Fatalf("Session = %+v, %v; want %+v", info, ok, want)
	}
	// A copy: changing it changes nothing of the session.
	info.Tags["team"] = "other"
	if again, _ := env.AWS.Session(aws.ToString(out.Credentials.AccessKeyId)); again.Tags["team"] != "data science" {
		t.Fatal("Session returned the session's own map")
	}

	plain, err := awsAssumeAccess(awsSTS(env, nil), env, 900, nil)
	if err != nil {
		t.Fatal(err)
	}
	if info, ok := env.AWS.Session(aws.ToString(plain.Credentials.AccessKeyId)); !ok || info.User != "" || info.Tags != nil || info.SourceIdentity != "" {
		t.Fatalf("unshaped session: %+v %v", info, ok)
	}
	if _, ok := env.AWS.Session("ASIAUNKNOWN"); ok {
		t.Fatal("Session of an unknown key")
	}
}

func TestAssumeRoleSessionShapeRefusals(t *testing.T) {
	env := tiptest.New(t)
	many := func(n, keyLen, valueLen int) []ststypes.Tag {
		var tags []ststypes.Tag
		for i := range n {
			k := fmt.Sprintf("k%03d", i) + strings.Repeat("k", max(0, keyLen-4))
			tags = append(tags, ststypes.Tag{Key: aws.String(k), Value: aws.String(strings.Repeat("v", valueLen))})
		}
		return tags
	}
	arns := func(n int) []ststypes.PolicyDescriptorType {
		var out []ststypes.PolicyDescriptorType
		for i := range n {
			out = append(out, ststypes.PolicyDescriptorType{Arn: aws.String(fmt.Sprintf("arn:aws:iam::123456789012:policy/P%d", i))})
		}
		return out
	}
	for _, tc := range []struct {
		name string
		edit func(*sts.AssumeRoleInput)
		code string
	}{
		{"51 tags", func(in *sts.AssumeRoleInput) { in.Tags = many(51, 4, 1) }, "ValidationError"},
		{"key of 129 characters", func(in *sts.AssumeRoleInput) { in.Tags = many(1, 129, 1) }, "ValidationError"},
		{"value of 257 characters", func(in *sts.AssumeRoleInput) { in.Tags = many(1, 4, 257) }, "ValidationError"},
		{"empty key", func(in *sts.AssumeRoleInput) { in.Tags = stsTags("", "v") }, "ValidationError"},
		{"key with a comma", func(in *sts.AssumeRoleInput) { in.Tags = stsTags("a,b", "v") }, "ValidationError"},
		{"value with a quote", func(in *sts.AssumeRoleInput) { in.Tags = stsTags("k", `"v"`) }, "ValidationError"},
		{"aws: key", func(in *sts.AssumeRoleInput) { in.Tags = stsTags("AWS:team", "v") }, "ValidationError"},
		{"keys differing by case", func(in *sts.AssumeRoleInput) { in.Tags = stsTags("Team", "a", "team", "b") }, "ValidationError"},
		{"transitive key not a tag", func(in *sts.AssumeRoleInput) {
			in.Tags, in.TransitiveTagKeys = stsTags("team", "a"), []string{"dept"}
		}, "ValidationError"},
		{"source identity with a space", func(in *sts.AssumeRoleInput) { in.SourceIdentity = aws.String("alice smith") }, "ValidationError"},
		{"source identity of 1 character", func(in *sts.AssumeRoleInput) { in.SourceIdentity = aws.String("a") }, "ValidationError"},
		{"source identity of 65 characters", func(in *sts.AssumeRoleInput) { in.SourceIdentity = aws.String(strings.Repeat("a", 65)) }, "ValidationError"},
		{"aws: source identity", func(in *sts.AssumeRoleInput) { in.SourceIdentity = aws.String("aws:alice") }, "ValidationError"},
		{"policy not JSON", func(in *sts.AssumeRoleInput) { in.Policy = aws.String("{not json") }, "MalformedPolicyDocument"},
		{"policy without statement", func(in *sts.AssumeRoleInput) { in.Policy = aws.String(`{"Version":"2012-10-17"}`) }, "MalformedPolicyDocument"},
		{"policy of 2049 characters", func(in *sts.AssumeRoleInput) {
			in.Policy = aws.String(`{"Statement":[],"Sid":"` + strings.Repeat("x", 2049-24) + `"}`)
		}, "ValidationError"},
		{"policy and ARNs over 2048 characters", func(in *sts.AssumeRoleInput) {
			in.Policy = aws.String(`{"Statement":[],"Sid":"` + strings.Repeat("x", 2000-24) + `"}`)
			in.PolicyArns = arns(2)
		}, "ValidationError"},
		{"11 policy ARNs", func(in *sts.AssumeRoleInput) { in.PolicyArns = arns(11) }, "ValidationError"},
		{"short policy ARN", func(in *sts.AssumeRoleInput) {
			in.PolicyArns = []ststypes.PolicyDescriptorType{{Arn: aws.String("arn:aws:iam::1:p")}}
		}, "ValidationError"},
		{"50 tags of the longest keys and values", func(in *sts.AssumeRoleInput) { in.Tags = many(50, 128, 256) }, "PackedPolicyTooLarge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := env.AWS.Calls("AssumeRole")
			_, err := shapedAssume(t, env, "alice", tc.edit)
			awsWantCode(t, err, tc.code, http.StatusBadRequest)
			if env.AWS.Calls("AssumeRole") != before+1 {
				t.Fatalf("AssumeRole calls %d, want %d: the SDK retried or skipped it", env.AWS.Calls("AssumeRole"), before+1)
			}
		})
	}
	// The limits themselves pass.
	if _, err := shapedAssume(t, env, "alice", func(in *sts.AssumeRoleInput) {
		in.Tags = many(50, 4, 10)
		in.Tags[0] = ststypes.Tag{Key: aws.String(strings.Repeat("k", 128)), Value: aws.String(strings.Repeat("v", 256))}
		in.TransitiveTagKeys = []string{"k001"}
		in.SourceIdentity = aws.String(strings.Repeat("a", 64))
		in.PolicyArns = arns(10)
	}); err != nil {
		t.Fatalf("at the limits: %v", err)
	}
}

func TestAssumeRoleTrustPolicyShaping(t *testing.T) {
	env := tiptest.New(t)
	tag := func(in *sts.AssumeRoleInput) { in.Tags = stsTags("team", "a") }
	transitive := func(in *sts.AssumeRoleInput) { in.Tags, in.TransitiveTagKeys = stsTags("team", "a"), []string{"team"} }
	source := func(in *sts.AssumeRoleInput) { in.SourceIdentity = aws.String("alice") }
	policy := func(in *sts.AssumeRoleInput) { in.Policy = aws.String(denyDataAccess) }

	if err := env.AWS.Configure(func(s *tiptest.Setup) { s.AccessRoleTagSession = false }); err != nil {
		t.Fatal(err)
	}
	for _, edit := range []func(*sts.AssumeRoleInput){tag, transitive} {
		_, err := shapedAssume(t, env, "alice", edit)
		awsWantCode(t, err, "AccessDenied", http.StatusForbidden)
		if !strings.Contains(err.Error(), "sts:TagSession") {
			t.Fatalf("refusal %v does not name sts:TagSession", err)
		}
	}
	for _, edit := range []func(*sts.AssumeRoleInput){source, policy} {
		if _, err := shapedAssume(t, env, "alice", edit); err != nil {
			t.Fatalf("without sts:TagSession, no tags: %v", err)
		}
	}

	if err := env.AWS.Configure(func(s *tiptest.Setup) { s.AccessRoleTagSession, s.AccessRoleSetSourceIdentity = true, false }); err != nil {
		t.Fatal(err)
	}
	_, err := shapedAssume(t, env, "alice", source)
	awsWantCode(t, err, "AccessDenied", http.StatusForbidden)
	if !strings.Contains(err.Error(), "sts:SetSourceIdentity") {
		t.Fatalf("refusal %v does not name sts:SetSourceIdentity", err)
	}
	if _, err := shapedAssume(t, env, "alice", tag); err != nil {
		t.Fatalf("without sts:SetSourceIdentity, tags: %v", err)
	}
}

func TestSessionPolicyRefusesDataAccess(t *testing.T) {
	env := tiptest.New(t)
	s3Seed(t, env, "alice/a.txt")
	env.AWS.Grant(env.Bucket, "alice/", "alice", tiptest.AccessRead)
	for _, tc := range []struct {
		name, policy string
		refused      bool
	}{
		{"deny s3:GetDataAccess", denyDataAccess, true},
		{"deny s3:*", `{"Statement":{"Effect":"Deny","Action":"s3:*","Resource":"*"}}`, true},
		{"deny *", `{"Statement":[{"Effect":"Allow","Action":"s3:GetDataAccess","Resource":"*"},{"Effect":"Deny","Action":"*","Resource":"*"}]}`, true},
		{"allows nothing of it", `{"Statement":[{"Effect":"Allow","Action":"qbusiness:ChatSync","Resource":"*"}]}`, true},
		{"allow s3:Get*", `{"Statement":[{"Effect":"Allow","Action":"s3:Get*","Resource":"*"}]}`, false},
		{"deny another action", `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"s3:PutObject","Resource":"*"}]}`, false},
		{"no policy", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := shapedAssume(t, env, "alice", func(in *sts.AssumeRoleInput) {
				if tc.policy != "" {
					in.Policy = aws.String(tc.policy)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			creds := awsCredsOf(out.Credentials)
			_, err = s3DataAccess(env, &creds, s3Target(env, "alice/"), permRead)
			if tc.refused {
				awsWantCode(t, err, "AccessDenied", http.StatusForbidden)
			} else if err != nil {
				t.Fatalf("GetDataAccess: %v", err)
			}
		})
	}
}
