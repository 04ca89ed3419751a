//lint:file-ignore SA1019 STS answers PackedPolicySize when session tags or policies were passed: what these tests check.

package exchange

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// The application role session is refused on either sign: STS's answer
// (SourceIdentity, PackedPolicySize) or the token's claims, so that an
// answer without the deprecated PackedPolicySize still refuses a session
// a token tagged. A token whose claims pass nothing is accepted.
func TestSharedSession(t *testing.T) {
	tagged := map[string]any{"https://aws.amazon.com/tags": map[string]any{
		"principal_tags": map[string]any{"team": []string{"a"}}, "transitive_tag_keys": []string{"team"}}}
	for _, tc := range []struct {
		name   string
		answer sts.AssumeRoleWithWebIdentityOutput
		claims map[string]any
		want   error
	}{
		{"plain", sts.AssumeRoleWithWebIdentityOutput{}, nil, nil},
		{"empty tags claim", sts.AssumeRoleWithWebIdentityOutput{}, map[string]any{"https://aws.amazon.com/tags": map[string]any{"principal_tags": map[string]any{}}}, nil},
		{"null claims", sts.AssumeRoleWithWebIdentityOutput{}, map[string]any{"https://aws.amazon.com/tags": nil, "https://aws.amazon.com/source_identity": nil}, nil},
		{"empty source identity claim", sts.AssumeRoleWithWebIdentityOutput{}, map[string]any{"https://aws.amazon.com/source_identity": ""}, nil},
		{"answer with PackedPolicySize", sts.AssumeRoleWithWebIdentityOutput{PackedPolicySize: aws.Int32(1)}, nil, errBootstrapTags},
		{"answer with SourceIdentity", sts.AssumeRoleWithWebIdentityOutput{SourceIdentity: aws.String("alice")}, nil, errBootstrapSourceIdentity},
		{"tags claim, answer without PackedPolicySize", sts.AssumeRoleWithWebIdentityOutput{}, tagged, errBootstrapTags},
		{"transitive keys only", sts.AssumeRoleWithWebIdentityOutput{}, map[string]any{"https://aws.amazon.com/tags": map[string]any{"transitive_tag_keys": []string{"team"}}}, errBootstrapTags},
		{"unreadable tags claim", sts.AssumeRoleWithWebIdentityOutput{}, map[string]any{"https://aws.amazon.com/tags": "team=a"}, errBootstrapTags},
		{"unreadable principal tags", sts.AssumeRoleWithWebIdentityOutput{}, map[string]any{"https://aws.amazon.com/tags": map[string]any{"principal_tags": []string{"a"}}}, errBootstrapTags},
		{"source identity claim", sts.AssumeRoleWithWebIdentityOutput{}, map[string]any{"https://aws.amazon.com/source_identity": "alice"}, errBootstrapSourceIdentity},
		{"claim names differing by case", sts.AssumeRoleWithWebIdentityOutput{}, map[string]any{"HTTPS://AWS.AMAZON.COM/TAGS": tagged["https://aws.amazon.com/tags"]}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			claims := map[string]any{"sub": "alice"}
			for k, v := range tc.claims {
				claims[k] = v
			}
			if got := sharedSession(&tc.answer, unsignedJWT(t, claims)); got != tc.want {
				t.Fatalf("sharedSession = %v, want %v", got, tc.want)
			}
		})
	}
	if got := sharedSession(&sts.AssumeRoleWithWebIdentityOutput{}, "not a token"); got != nil {
		t.Fatalf("an unreadable token whose session STS issued plain: %v", got)
	}
}
