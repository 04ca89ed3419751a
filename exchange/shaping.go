package exchange

import (
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
)

// SessionOptions shape the identity-enhanced session of one user: what
// [Options.Session] returns, passed to the AssumeRole that carries the
// user's identity context. The zero value passes nothing.
//
// Tags and SourceIdentity need a permission in the access role's trust
// policy, for the role that signs the exchange: Tags and
// TransitiveTagKeys need sts:TagSession, SourceIdentity needs
// sts:SetSourceIdentity (Policy and PolicyArns need none). Without it STS
// refuses every user with AccessDenied, an error matching [ErrRefused].
//
// What breaks the rules below is refused before any call, with an error
// matching [ErrConfig]. STS also limits the packed size of the tags and
// policies together, which cannot be told beforehand: over it, STS
// answers PackedPolicyTooLarge, an error matching [ErrConfig] too.
type SessionOptions struct {
	// Tags are the session tags (aws:PrincipalTag/KEY in policies): at most
	// 50; a key is 1 to 128 characters, a value 0 to 256, of letters,
	// digits, spaces and _.:/=+-@; keys are not case sensitive (two keys
	// that differ only by case are refused) and none starts with "aws:".
	// Amazon Q Business data accessors require the tag
	// "qbusiness-dataaccessor:ExternalId".
	Tags map[string]string
	// TransitiveTagKeys are the keys of Tags that pass on to the sessions
	// the user's session assumes in turn (role chaining): each must be a
	// key of Tags.
	TransitiveTagKeys []string
	// SourceIdentity names the user in CloudTrail across role chains
	// (aws:SourceIdentity): 2 to 64 characters of letters, digits and
	// +=,.@_-, not starting with "aws:". Empty: none.
	SourceIdentity string
	// Policy is an inline session policy (JSON) that scopes the session
	// down: the session may do only what both the access role and it
	// allow. At most 2048 characters, with PolicyArns' ARNs.
	Policy string
	// PolicyArns are the ARNs of managed policies used as session policies,
	// in the access role's account: at most 10.
	PolicyArns []string
}

// STS's limits on session shaping.
const (
	maxSessionTags     = 50
	maxTagKey          = 128
	maxTagValue        = 256
	maxSessionPolicy   = 2048 // characters of Policy and the ARNs together
	maxPolicyArns      = 10
	minPolicyArn       = 20
	reservedTagPrefix  = "aws:"
	opSession          = "Session"
	codeSessionRefused = "SessionRefused"
)

// sourceIdentityRE is STS's constraint on SourceIdentity.
var sourceIdentityRE = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)

// shapeError is a SessionOptions that STS would refuse: an error matching
// ErrConfig, whose code names the field and the rule, never the value
// (values come from users' claims).
func shapeError(rule string) error {
	return &Error{kind: kindConfig, Op: opSession, Code: "SessionOptions." + rule}
}

// check returns what STS would refuse in o, before any call.
func (o *SessionOptions) check() error {
	if len(o.Tags) > maxSessionTags {
		return shapeError("Tags: more than 50 tags")
	}
	folded := make(map[string]bool, len(o.Tags))
	for k, v := range o.Tags {
		switch n := utf8.RuneCountInString(k); {
		case n < 1 || n > maxTagKey:
			return shapeError("Tags: a key is not 1 to 128 characters long")
		case !tagText(k):
			return shapeError("Tags: a key holds a character other than letters, digits, spaces and _.:/=+-@")
		case hasPrefixFold(k, reservedTagPrefix):
			return shapeError(`Tags: a key starts with "aws:"`)
		}
		if utf8.RuneCountInString(v) > maxTagValue {
			return shapeError("Tags: a value is longer than 256 characters")
		}
		if !tagText(v) {
			return shapeError("Tags: a value holds a character other than letters, digits, spaces and _.:/=+-@")
		}
		lk := strings.ToLower(k)
		if folded[lk] {
			return shapeError("Tags: two keys differ only by case")
		}
		folded[lk] = true
	}
	if len(o.TransitiveTagKeys) > maxSessionTags {
		return shapeError("TransitiveTagKeys: more than 50 keys")
	}
	for _, k := range o.TransitiveTagKeys {
		if _, ok := o.Tags[k]; !ok {
			return shapeError("TransitiveTagKeys: a key is not a key of Tags")
		}
	}
	if o.SourceIdentity != "" {
		if !sourceIdentityRE.MatchString(o.SourceIdentity) {
			return shapeError("SourceIdentity: not 2 to 64 characters of letters, digits and +=,.@_-")
		}
		if hasPrefixFold(o.SourceIdentity, reservedTagPrefix) {
			return shapeError(`SourceIdentity: starts with "aws:"`)
		}
	}
	if len(o.PolicyArns) > maxPolicyArns {
		return shapeError("PolicyArns: more than 10 ARNs")
	}
	size := utf8.RuneCountInString(o.Policy)
	for _, a := range o.PolicyArns {
		n := utf8.RuneCountInString(a)
		if n < minPolicyArn || !strings.HasPrefix(a, "arn:") {
			return shapeError("PolicyArns: an ARN is not an ARN of at least 20 characters")
		}
		size += n
	}
	if size > maxSessionPolicy {
		return shapeError("Policy: Policy and PolicyArns are longer than 2048 characters together")
	}
	if o.Policy != "" {
		if !policyText(o.Policy) {
			return shapeError("Policy: holds a character outside tab, line feed, carriage return and U+0020 to U+00FF")
		}
		if !json.Valid([]byte(o.Policy)) {
			return shapeError("Policy: not a JSON document")
		}
	}
	return nil
}

// tagText reports whether s holds only the characters STS allows in tags:
// [\p{L}\p{Z}\p{N}_.:/=+\-@].
func tagText(s string) bool {
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.In(r, unicode.Z) && !unicode.IsNumber(r) && !strings.ContainsRune("_.:/=+-@", r) {
			return false
		}
	}
	return true
}

// policyText reports whether s holds only the characters STS allows in a
// session policy.
func policyText(s string) bool {
	for _, r := range s {
		if r != '\t' && r != '\n' && r != '\r' && (r < 0x20 || r > 0xff) {
			return false
		}
	}
	return true
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// clone returns a copy of o that shares nothing with it, nil when empty.
func (o SessionOptions) clone() SessionOptions {
	if len(o.Tags) == 0 {
		o.Tags = nil
	} else {
		o.Tags = maps.Clone(o.Tags)
	}
	if len(o.TransitiveTagKeys) == 0 {
		o.TransitiveTagKeys = nil
	} else {
		o.TransitiveTagKeys = slices.Clone(o.TransitiveTagKeys)
	}
	if len(o.PolicyArns) == 0 {
		o.PolicyArns = nil
	} else {
		o.PolicyArns = slices.Clone(o.PolicyArns)
	}
	return o
}

// shape calls Options.Session with the claims of webToken and returns its
// SessionOptions, checked: an error of the hook matches ErrRefused, and
// options STS would refuse match ErrConfig. Without a hook, or when the
// hook returns nothing to pass, it returns nil: a Session that is not
// shaped holds no SessionOptions (a pointer costs a held user nothing).
func (x *Exchanger) shape(webToken string) (*SessionOptions, error) {
	if x.o.Session == nil {
		return nil, nil
	}
	var claims map[string]any
	if err := decodeClaims(webToken, &claims); err != nil || claims == nil {
		return nil, errMalformed
	}
	so, err := x.o.Session(claims)
	if err != nil {
		return nil, &Error{kind: kindRefused, Op: opSession, Code: codeSessionRefused, Err: err}
	}
	so = so.clone()
	if err := so.check(); err != nil {
		return nil, err
	}
	if so.empty() {
		return nil, nil
	}
	return &so, nil
}

// empty reports whether o passes nothing.
func (o *SessionOptions) empty() bool {
	return len(o.Tags) == 0 && len(o.TransitiveTagKeys) == 0 && o.SourceIdentity == "" && o.Policy == "" && len(o.PolicyArns) == 0
}

// applyTo sets o's parts on in, the AssumeRole that carries the identity
// context; keys are sent in a stable order.
func (o *SessionOptions) applyTo(in *sts.AssumeRoleInput) {
	if len(o.Tags) > 0 {
		keys := slices.Sorted(maps.Keys(o.Tags))
		in.Tags = make([]ststypes.Tag, len(keys))
		for i, k := range keys {
			in.Tags[i] = ststypes.Tag{Key: aws.String(k), Value: aws.String(o.Tags[k])}
		}
	}
	if len(o.TransitiveTagKeys) > 0 {
		in.TransitiveTagKeys = o.TransitiveTagKeys
	}
	if o.SourceIdentity != "" {
		in.SourceIdentity = aws.String(o.SourceIdentity)
	}
	if o.Policy != "" {
		in.Policy = aws.String(o.Policy)
	}
	if len(o.PolicyArns) > 0 {
		in.PolicyArns = make([]ststypes.PolicyDescriptorType, len(o.PolicyArns))
		for i, a := range o.PolicyArns {
			in.PolicyArns[i] = ststypes.PolicyDescriptorType{Arn: aws.String(a)}
		}
	}
}
