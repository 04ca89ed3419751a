//lint:file-ignore SA1019 STS answers PackedPolicySize when session tags or policies were passed: what these tests check.

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

	"github.com/tipkit/tipkit/tiptest"
)

// tagsClaim returns the claims of a token through which the identity
// provider passes session tags (kv: key, value, ...), transitive keys and,
// when not empty, a source identity.
func tagsClaim(transitive []string, source string, kv ...string) map[string]any {
	tags := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		tags[kv[i]] = []string{kv[i+1]}
	}
	claims := map[string]any{"https://aws.amazon.com/tags": map[string]any{"principal_tags": tags, "transitive_tag_keys": transitive}}
	if source != "" {
		claims["https://aws.amazon.com/source_identity"] = source
	}
	return claims
}

// A token's claims tag the application role's session and set its source
// identity when the role's trust policy allows it (AccessDenied
// otherwise); the answer tells PackedPolicySize and SourceIdentity, and
// the transitive tags and source identity pass on to a session of another
// user that this session assumes.
func TestWebIdentitySessionShape(t *testing.T) {
	env := tiptest.New(t)
	claims := tagsClaim([]string{"team"}, "alice", "team", "blue", "dept", "eng")

	// To begin with, the trust policy allows sts:AssumeRoleWithWebIdentity alone.
	if got := icActions(icTrust(t, env, "tipkit-application")); !slices.Equal(got, []string{"sts:AssumeRoleWithWebIdentity"}) {
		t.Fatalf("application role trust actions %v", got)
	}
	for _, tc := range []struct {
		claims map[string]any
		action string
	}{
		{tagsClaim(nil, "", "team", "blue"), "sts:TagSession"},
		{map[string]any{"https://aws.amazon.com/source_identity": "alice"}, "sts:SetSourceIdentity"},
	} {
		_, err := awsWebIdentity(env, env.IdP.Token("alice", tiptest.WithClaims(tc.claims)), 0)
		awsWantCode(t, err, "AccessDenied", http.StatusForbidden)
		if !strings.Contains(err.Error(), tc.action) {
			t.Fatalf("refusal %v does not name %s", err, tc.action)
		}
	}
	plain, err := awsWebIdentity(env, env.IdP.Token("alice"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if plain.PackedPolicySize != nil || plain.SourceIdentity != nil {
		t.Fatalf("a plain token's answer: PackedPolicySize %v, SourceIdentity %v", plain.PackedPolicySize, plain.SourceIdentity)
	}
	if info, ok := env.AWS.Session(aws.ToString(plain.Credentials.AccessKeyId)); !ok || info.Tags != nil || info.SourceIdentity != "" {
		t.Fatalf("a plain token's session: %+v %v", info, ok)
	}

	if err := env.AWS.Configure(func(s *tiptest.Setup) {
		s.ApplicationRoleTagSession, s.ApplicationRoleSetSourceIdentity = true, true
	}); err != nil {
		t.Fatal(err)
	}
	if got := icActions(icTrust(t, env, "tipkit-application")); !slices.Equal(got, []string{"sts:AssumeRoleWithWebIdentity", "sts:TagSession", "sts:SetSourceIdentity"}) {
		t.Fatalf("application role trust actions %v", got)
	}
	out, err := awsWebIdentity(env, env.IdP.Token("alice", tiptest.WithClaims(claims)), 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := aws.ToInt32(out.PackedPolicySize); out.PackedPolicySize == nil || n < 1 || n > 100 || aws.ToString(out.SourceIdentity) != "alice" {
		t.Fatalf("answer: PackedPolicySize %v, SourceIdentity %q", out.PackedPolicySize, aws.ToString(out.SourceIdentity))
	}
	app := awsCredsOf(out.Credentials)
	info, ok := env.AWS.Session(app.AccessKeyID)
	if !ok || info.User != "" || !maps.Equal(info.Tags, map[string]string{"team": "blue", "dept": "eng"}) ||
		!slices.Equal(info.TransitiveTagKeys, []string{"team"}) || info.SourceIdentity != "alice" {
		t.Fatalf("application role session: %+v %v", info, ok)
	}

	// Signed by that session, bob's exchange and his access role session:
	// alice's transitive tag and source identity pass on, her other tag
	// does not.
	ex, err := awsExchange(awsOIDC(env, &app), env, env.IdP.Token("bob"))
	if err != nil {
		t.Fatal(err)
	}
	contexts := awsContexts(aws.ToString(ex.AwsAdditionalDetails.IdentityContext), 1)
	bob, err := awsAssumeAccess(awsSTS(env, &app), env, 900, contexts)
	if err != nil {
		t.Fatal(err)
	}
	info, ok = env.AWS.Session(aws.ToString(bob.Credentials.AccessKeyId))
	if !ok || info.User != "bob" || !maps.Equal(info.Tags, map[string]string{"team": "blue"}) ||
		!slices.Equal(info.TransitiveTagKeys, []string{"team"}) || info.SourceIdentity != "alice" {
		t.Fatalf("bob's session: %+v %v", info, ok)
	}
	// Bob's own source identity is refused: it cannot change in a chain.
	_, err = awsSTS(env, &app).AssumeRole(bg, &sts.AssumeRoleInput{
		RoleArn:          aws.String(env.AccessRoleArn),
		RoleSessionName:  aws.String("bob"),
		DurationSeconds:  aws.Int32(900),
		ProvidedContexts: contexts,
		SourceIdentity:   aws.String("bob"),
	})
	awsWantCode(t, err, "ValidationError", http.StatusBadRequest)
}

// Claims of the wrong shape, or breaking STS's rules for tags and source
// identities, are refused before any session is issued.
func TestWebIdentitySessionShapeRefusals(t *testing.T) {
	env := tiptest.New(t)
	if err := env.AWS.Configure(func(s *tiptest.Setup) {
		s.ApplicationRoleTagSession, s.ApplicationRoleSetSourceIdentity = true, true
	}); err != nil {
		t.Fatal(err)
	}
	var many []string
	for i := range 51 {
		many = append(many, fmt.Sprintf("k%02d", i), "v")
	}
	const tags = "https://aws.amazon.com/tags"
	for _, tc := range []struct {
		name   string
		claims map[string]any
		code   string
	}{
		{"tags claim not an object", map[string]any{tags: "team=blue"}, "InvalidIdentityToken"},
		{"principal_tags not an object", map[string]any{tags: map[string]any{"principal_tags": []string{"team"}}}, "InvalidIdentityToken"},
		{"tag value not an array", map[string]any{tags: map[string]any{"principal_tags": map[string]any{"team": "blue"}}}, "InvalidIdentityToken"},
		{"tag of two values", map[string]any{tags: map[string]any{"principal_tags": map[string]any{"team": []string{"a", "b"}}}}, "InvalidIdentityToken"},
		{"transitive keys not an array", map[string]any{tags: map[string]any{"principal_tags": map[string]any{"team": []string{"a"}}, "transitive_tag_keys": "team"}}, "InvalidIdentityToken"},
		{"source identity not a string", map[string]any{"https://aws.amazon.com/source_identity": 7}, "InvalidIdentityToken"},
		{"transitive key not a tag", tagsClaim([]string{"dept"}, "", "team", "blue"), "ValidationError"},
		{"51 tags", tagsClaim(nil, "", many...), "ValidationError"},
		{"aws: key", tagsClaim(nil, "", "aws:team", "blue"), "ValidationError"},
		{"source identity with a space", tagsClaim(nil, "alice smith"), "ValidationError"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := env.AWS.Calls("AssumeRoleWithWebIdentity")
			_, err := awsWebIdentity(env, env.IdP.Token("alice", tiptest.WithClaims(tc.claims)), 0)
			awsWantCode(t, err, tc.code, http.StatusBadRequest)
			if n := env.AWS.Calls("AssumeRoleWithWebIdentity"); n != before+1 {
				t.Fatalf("AssumeRoleWithWebIdentity calls %d, want %d", n, before+1)
			}
		})
	}
}
