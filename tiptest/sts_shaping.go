package tiptest

import (
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// STS's limits on session tags, source identity and session policies.
const (
	stsMaxTags          = 50
	stsMaxTagKey        = 128
	stsMaxTagValue      = 256
	stsMaxPolicy        = 2048 // characters of the inline policy and the ARNs together
	stsMaxPolicyArns    = 10
	stsMinPolicyArn     = 20
	stsMaxPolicyArn     = 2048
	stsReservedPrefix   = "aws:"
	stsPackedPolicySize = 8192 // see packedSize
)

// SessionInfo is what a session issued by the local AWS carries, as
// AWS.Session tells it.
type SessionInfo struct {
	// User is the Identity Center user of an identity-enhanced session
	// (as AWS.UserFor tells it); "" for a session without identity context.
	User string
	// Tags are the session tags: those passed to the AssumeRole that
	// issued the session, and the transitive tags of its caller. Nil when
	// there are none.
	Tags map[string]string
	// TransitiveTagKeys are the keys of Tags that pass on to the sessions
	// this one assumes in turn.
	TransitiveTagKeys []string
	// SourceIdentity is the session's source identity: passed to the
	// AssumeRole, or inherited from its caller.
	SourceIdentity string
	// Policy is the inline session policy passed to the AssumeRole.
	Policy string
	// PolicyArns are the managed session policies passed to the AssumeRole.
	PolicyArns []string
}

// Session returns what the session of accessKeyID carries: its Identity
// Center user, session tags, source identity and session policies. It
// reports false for an access key the local AWS did not issue. The IAM
// user's keys (ServerCredentials) carry nothing.
func (a *AWS) Session(accessKeyID string) (SessionInfo, bool) {
	p := a.principal(accessKeyID)
	if p == nil {
		return SessionInfo{}, false
	}
	s := p.shape
	return SessionInfo{
		User:              p.user,
		Tags:              maps.Clone(s.tags),
		TransitiveTagKeys: slices.Clone(s.transitive),
		SourceIdentity:    s.sourceIdentity,
		Policy:            s.policy,
		PolicyArns:        slices.Clone(s.policyArns),
	}, true
}

// sessionShape is what AssumeRole shaped a session with. It is immutable
// once the session is issued.
type sessionShape struct {
	tags           map[string]string
	transitive     []string
	sourceIdentity string
	policy         string
	policyArns     []string
}

// sessionShape reads and validates the Tags, TransitiveTagKeys,
// SourceIdentity, Policy and PolicyArns of an AssumeRole, as STS does, and
// merges what the caller's session passes on: its transitive tags (which a
// tag of the call may not override) and its source identity (which the
// call may not change).
func (c *stsCall) sessionShape() (sessionShape, *apiError) {
	var s sessionShape
	members, aerr := c.members("Tags", "Key", "Value")
	if aerr != nil {
		return s, aerr
	}
	tags := make([]tagPair, 0, len(members))
	for _, t := range members {
		tags = append(tags, tagPair{t["Key"], t["Value"]})
	}
	if aerr := s.addTags(tags); aerr != nil {
		return s, aerr
	}
	transitive, aerr := c.members("TransitiveTagKeys", "")
	if aerr != nil {
		return s, aerr
	}
	keys := make([]string, 0, len(transitive))
	for _, t := range transitive {
		keys = append(keys, t[""])
	}
	if aerr := s.addTransitive(keys); aerr != nil {
		return s, aerr
	}
	if c.form.Has("SourceIdentity") {
		if aerr := s.setSourceIdentity(c.form.Get("SourceIdentity")); aerr != nil {
			return s, aerr
		}
	}
	if aerr := s.readPolicies(c); aerr != nil {
		return s, aerr
	}
	return s, s.inherit(c.caller.shape)
}

// tagPair is one session tag, in the order the request gave it.
type tagPair struct{ key, value string }

// addTags validates tags as STS does and sets them on s.
func (s *sessionShape) addTags(tags []tagPair) *apiError {
	if len(tags) > stsMaxTags {
		return validationError(strconv.Itoa(len(tags))+" tags", "tags", "Member must have length less than or equal to 50")
	}
	folded := map[string]bool{}
	for _, t := range tags {
		k, v := t.key, t.value
		switch n := utf8.RuneCountInString(k); {
		case n < 1 || n > stsMaxTagKey:
			return validationError(k, "tags.member.key", "Member must have length between 1 and 128")
		case !stsTagText(k):
			return validationError(k, "tags.member.key", `Member must satisfy regular expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]+`)
		case strings.HasPrefix(strings.ToLower(k), stsReservedPrefix):
			return newAPIError("ValidationError", "Tag keys may not start with the reserved prefix aws:")
		case utf8.RuneCountInString(v) > stsMaxTagValue:
			return validationError(v, "tags.member.value", "Member must have length less than or equal to 256")
		case !stsTagText(v):
			return validationError(v, "tags.member.value", `Member must satisfy regular expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]*`)
		case folded[strings.ToLower(k)]:
			return newAPIError("ValidationError", "Duplicate tag keys found. Please note that Tag keys are case insensitive.")
		}
		folded[strings.ToLower(k)] = true
		if s.tags == nil {
			s.tags = map[string]string{}
		}
		s.tags[k] = v
	}
	return nil
}

// addTransitive validates the transitive tag keys, which must be keys of
// s's tags, and sets them on s.
func (s *sessionShape) addTransitive(keys []string) *apiError {
	if len(keys) > stsMaxTags {
		return validationError(strconv.Itoa(len(keys))+" keys", "transitiveTagKeys", "Member must have length less than or equal to 50")
	}
	for _, k := range keys {
		if _, ok := s.tags[k]; !ok {
			return newAPIError("ValidationError", "The key "+k+" in TransitiveTagKeys is not one of the session tags of the request.")
		}
		s.transitive = append(s.transitive, k)
	}
	return nil
}

// setSourceIdentity validates the source identity and sets it on s.
func (s *sessionShape) setSourceIdentity(si string) *apiError {
	switch {
	case !sessionNamePattern.MatchString(si):
		return validationError(si, "sourceIdentity",
			`Member must have length between 2 and 64 and satisfy regular expression pattern: [\w+=,.@-]*`)
	case strings.HasPrefix(strings.ToLower(si), stsReservedPrefix):
		return newAPIError("ValidationError", "The source identity may not start with the reserved prefix aws:")
	}
	s.sourceIdentity = si
	return nil
}

// readPolicies reads and validates Policy and PolicyArns.
func (s *sessionShape) readPolicies(c *stsCall) *apiError {
	arns, aerr := c.members("PolicyArns", "arn")
	if aerr != nil {
		return aerr
	}
	if len(arns) > stsMaxPolicyArns {
		return validationError(strconv.Itoa(len(arns))+" ARNs", "policyArns", "Member must have length less than or equal to 10")
	}
	size := 0
	for _, m := range arns {
		arn := m["arn"]
		if n := len(arn); n < stsMinPolicyArn || n > stsMaxPolicyArn || !strings.HasPrefix(arn, "arn:") {
			return validationError(arn, "policyArns.member.arn", "Member must have length between 20 and 2048")
		}
		size += len(arn)
		s.policyArns = append(s.policyArns, arn)
	}
	if c.form.Has("Policy") {
		p := c.form.Get("Policy")
		n := utf8.RuneCountInString(p)
		switch {
		case n < 1 || n > stsMaxPolicy:
			return validationError("***", "policy", "Member must have length between 1 and 2048")
		case !stsPolicyText(p):
			return validationError("***", "policy", `Member must satisfy regular expression pattern: [\u0009\u000A\u000D\u0020-\u00FF]+`)
		}
		var doc map[string]any
		if json.Unmarshal([]byte(p), &doc) != nil {
			return newAPIError("MalformedPolicyDocument", "The policy is not in the valid JSON format.")
		}
		if _, ok := doc["Statement"]; !ok {
			return newAPIError("MalformedPolicyDocument", "Syntax errors in policy: the policy has no Statement.")
		}
		size += n
		s.policy = p
	}
	if size > stsMaxPolicy {
		return newAPIError("ValidationError", "The plaintext of the session policies exceeds 2048 characters.")
	}
	if s.packedSize() > stsPackedPolicySize {
		return newAPIError("PackedPolicyTooLarge", "Packed size of the policies and session tags exceeds the limit.")
	}
	return nil
}

// packedSize models the packed binary size of a session's policies and
// tags, which STS limits apart from their plaintext: the policy's
// characters outside white space, the ARNs, and the keys and values of
// the tags. A request over stsPackedPolicySize (8192) is refused with
// PackedPolicyTooLarge: 50 tags of the longest keys and values are.
func (s *sessionShape) packedSize() int {
	n := 0
	for _, r := range s.policy {
		if !unicode.IsSpace(r) {
			n++
		}
	}
	for _, a := range s.policyArns {
		n += len(a)
	}
	for k, v := range s.tags {
		n += utf8.RuneCountInString(k) + utf8.RuneCountInString(v)
	}
	return n
}

// inherit merges into s what the caller's session passes on.
func (s *sessionShape) inherit(caller sessionShape) *apiError {
	if caller.sourceIdentity != "" {
		if s.sourceIdentity != "" && s.sourceIdentity != caller.sourceIdentity {
			return newAPIError("ValidationError", "The source identity of a role chain cannot be changed.")
		}
		s.sourceIdentity = caller.sourceIdentity
	}
	for _, k := range caller.transitive {
		for own := range s.tags {
			if strings.EqualFold(own, k) {
				return newAPIError("ValidationError", "A session tag of the request has the key of a transitive tag of the calling session.")
			}
		}
	}
	for _, k := range caller.transitive {
		if s.tags == nil {
			s.tags = map[string]string{}
		}
		s.tags[k] = caller.tags[k]
		if !slices.Contains(s.transitive, k) {
			s.transitive = append(s.transitive, k)
		}
	}
	return nil
}

// tagged reports whether the call passes session tags (its own, not
// inherited ones), which needs sts:TagSession.
func (c *stsCall) tagged() bool {
	return c.hasParamPrefix("Tags.member.") || c.hasParamPrefix("TransitiveTagKeys.member.")
}

// members returns the members of the awsQuery list name: name.member.N.field
// for each of fields ("" for a list of strings: name.member.N), numbered
// from 1 without gaps. An empty list ("name=") has none.
func (c *stsCall) members(name string, fields ...string) ([]map[string]string, *apiError) {
	prefix := name + ".member."
	byIndex := map[int]map[string]string{}
	for key := range c.form {
		rest, ok := strings.CutPrefix(key, prefix)
		if !ok {
			continue
		}
		index, field, _ := strings.Cut(rest, ".")
		n, err := strconv.Atoi(index)
		if err != nil || n < 1 || n > 1000 || !slices.Contains(fields, field) {
			return nil, newAPIError("ValidationError", fmt.Sprintf("%s: unknown member %s", name, key))
		}
		if byIndex[n] == nil {
			byIndex[n] = map[string]string{}
		}
		byIndex[n][field] = c.form.Get(key)
	}
	out := make([]map[string]string, 0, len(byIndex))
	for n := 1; n <= len(byIndex); n++ {
		m := byIndex[n]
		if m == nil {
			return nil, newAPIError("ValidationError", name+" members must be numbered from 1 without gaps")
		}
		out = append(out, m)
	}
	return out, nil
}

// stsTagText reports whether s holds only [\p{L}\p{Z}\p{N}_.:/=+\-@].
func stsTagText(s string) bool {
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.In(r, unicode.Z) && !unicode.IsNumber(r) && !strings.ContainsRune("_.:/=+-@", r) {
			return false
		}
	}
	return true
}

// stsPolicyText reports whether s holds only [\u0009\u000A\u000D\u0020-\u00FF].
func stsPolicyText(s string) bool {
	for _, r := range s {
		if r != '\t' && r != '\n' && r != '\r' && (r < 0x20 || r > 0xff) {
			return false
		}
	}
	return true
}

// sessionDenies reports whether the inline session policy of p refuses
// action: a Deny statement names it (its Action, a string or a list, holds
// the action or a wildcard that matches it, such as "s3:*" or "*"), or
// the policy has no Allow statement that names it (a session may do only
// what both its role and its session policy allow). Resources and
// conditions are not evaluated, and managed session policies (PolicyArns)
// are taken to allow everything: the local AWS holds no managed policy.
func sessionDenies(p *principal, action string) bool {
	if p.shape.policy == "" {
		return false
	}
	var doc struct {
		Statement json.RawMessage
	}
	if json.Unmarshal([]byte(p.shape.policy), &doc) != nil {
		return true
	}
	var stmts []policyRule
	if json.Unmarshal(doc.Statement, &stmts) != nil {
		var one policyRule
		if json.Unmarshal(doc.Statement, &one) != nil {
			return true
		}
		stmts = []policyRule{one}
	}
	allowed := false
	for _, st := range stmts {
		if !st.names(action) {
			continue
		}
		switch st.Effect {
		case "Deny":
			return true
		case "Allow":
			allowed = true
		}
	}
	return !allowed
}

// policyRule is the part of a policy statement sessionDenies reads.
type policyRule struct {
	Effect string
	Action json.RawMessage
}

// names reports whether the statement's Action matches action, wildcards
// (* and ?) and case aside.
func (st policyRule) names(action string) bool {
	var actions []string
	if json.Unmarshal(st.Action, &actions) != nil {
		var one string
		if json.Unmarshal(st.Action, &one) != nil {
			return false
		}
		actions = []string{one}
	}
	for _, pat := range actions {
		if ok, err := path.Match(strings.ToLower(pat), strings.ToLower(action)); err == nil && ok {
			return true
		}
	}
	return false
}
