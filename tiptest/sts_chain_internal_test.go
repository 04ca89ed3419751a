package tiptest

import (
	"maps"
	"net/url"
	"slices"
	"testing"
)

// What a role chain passes on is tested here on the call itself (and end
// to end, from a session of the application role whose token passed
// tags, in TestWebIdentitySessionShape): a caller's
// transitive tags and source identity pass on, a tag of the call may not
// override a transitive one, and the source identity may not change.
func TestChainedSessionShape(t *testing.T) {
	caller := &principal{shape: sessionShape{
		tags:           map[string]string{"team": "a", "project": "x"},
		transitive:     []string{"team"},
		sourceIdentity: "alice",
	}}
	call := func(form url.Values) (sessionShape, *apiError) {
		return (&stsCall{form: form, caller: caller}).sessionShape()
	}

	s, aerr := call(url.Values{"Tags.member.1.Key": {"dept"}, "Tags.member.1.Value": {"finance"}})
	if aerr != nil {
		t.Fatal(aerr.msg)
	}
	if want := map[string]string{"dept": "finance", "team": "a"}; !maps.Equal(s.tags, want) ||
		!slices.Equal(s.transitive, []string{"team"}) || s.sourceIdentity != "alice" {
		t.Fatalf("chained shape %+v", s)
	}
	if s, aerr := call(url.Values{"SourceIdentity": {"alice"}}); aerr != nil || s.sourceIdentity != "alice" {
		t.Fatalf("the same source identity: %+v %v", s, aerr)
	}
	for name, form := range map[string]url.Values{
		"another source identity": {"SourceIdentity": {"bob"}},
		"a transitive key again":  {"Tags.member.1.Key": {"TEAM"}, "Tags.member.1.Value": {"b"}},
	} {
		if _, aerr := call(form); aerr == nil || aerr.code != "ValidationError" {
			t.Fatalf("%s: %v", name, aerr)
		}
	}
}
