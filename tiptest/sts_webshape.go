package tiptest

import (
	"slices"
	"strconv"
)

// The claims of a web identity token through which an identity provider
// passes session tags and a source identity to AssumeRoleWithWebIdentity.
const (
	// claimTags is an object of principal_tags (each key mapped to an
	// array holding its one value) and transitive_tag_keys (an array of
	// keys among principal_tags).
	claimTags = "https://aws.amazon.com/tags"
	// claimSourceIdentity is the source identity, a string.
	claimSourceIdentity = "https://aws.amazon.com/source_identity"
)

// webIdentityShape reads the session tags, transitive tag keys and source
// identity that the claims of a web identity token pass, with the rules
// of AssumeRole's parameters (see sessionShape). A claim of the wrong
// shape is refused with InvalidIdentityToken.
func webIdentityShape(claims map[string]any) (sessionShape, *apiError) {
	var s sessionShape
	if raw, ok := claims[claimTags]; ok {
		obj, ok := raw.(map[string]any)
		if !ok {
			return s, malformedClaim(claimTags + " is not a JSON object")
		}
		tags, aerr := principalTags(obj["principal_tags"])
		if aerr != nil {
			return s, aerr
		}
		if aerr := s.addTags(tags); aerr != nil {
			return s, aerr
		}
		keys, aerr := claimStrings(obj["transitive_tag_keys"], "transitive_tag_keys")
		if aerr != nil {
			return s, aerr
		}
		if aerr := s.addTransitive(keys); aerr != nil {
			return s, aerr
		}
	}
	if raw, ok := claims[claimSourceIdentity]; ok {
		si, ok := raw.(string)
		if !ok {
			return s, malformedClaim(claimSourceIdentity + " is not a string")
		}
		if aerr := s.setSourceIdentity(si); aerr != nil {
			return s, aerr
		}
	}
	return s, nil
}

// principalTags reads principal_tags: an object whose members are arrays
// of one string each. The tags come in the order of their keys.
func principalTags(raw any) ([]tagPair, *apiError) {
	if raw == nil {
		return nil, nil
	}
	obj, ok := raw.(map[string]any)
	if !ok {
		return nil, malformedClaim("principal_tags is not a JSON object")
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	tags := make([]tagPair, 0, len(keys))
	for _, k := range keys {
		values, aerr := claimStrings(obj[k], "principal_tags")
		if aerr != nil {
			return nil, aerr
		}
		if len(values) != 1 {
			return nil, malformedClaim("each member of principal_tags must be an array of one value, not " + strconv.Itoa(len(values)))
		}
		tags = append(tags, tagPair{k, values[0]})
	}
	return tags, nil
}

// claimStrings reads an array of strings of the tags claim; nil gives none.
func claimStrings(raw any, name string) ([]string, *apiError) {
	if raw == nil {
		return nil, nil
	}
	arr, ok := raw.([]any)
	if !ok {
		return nil, malformedClaim(name + " is not a JSON array")
	}
	out := make([]string, 0, len(arr))
	for _, v := range arr {
		s, ok := v.(string)
		if !ok {
			return nil, malformedClaim(name + " holds a value that is not a string")
		}
		out = append(out, s)
	}
	return out, nil
}

// malformedClaim refuses a token whose tags or source identity claim does
// not have the documented shape.
func malformedClaim(msg string) *apiError {
	return newAPIError("InvalidIdentityToken", "The web identity token's claim "+msg)
}

// packedPercent is the PackedPolicySize of an answer: how close the
// session's policies and tags come to the packed limit, in percent
// rounded up, so that any tag or policy shows.
func (s *sessionShape) packedPercent() int {
	return (s.packedSize()*100 + stsPackedPolicySize - 1) / stsPackedPolicySize
}

// passed reports whether the session was given tags or policies, for
// which STS answers PackedPolicySize.
func (s *sessionShape) passed() bool {
	return len(s.tags) > 0 || s.policy != "" || len(s.policyArns) > 0
}
