package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
)

// policy is an IAM policy document, read as far as a trust policy's
// AWS principals and actions go.
type policy struct {
	statements []statement
}

// statement is one statement of a policy.
type statement struct {
	Effect       string          `json:"Effect"`
	Principal    json.RawMessage `json:"Principal"`
	NotPrincipal json.RawMessage `json:"NotPrincipal"`
	Action       json.RawMessage `json:"Action"`
	NotAction    json.RawMessage `json:"NotAction"`
	Condition    json.RawMessage `json:"Condition"`
}

// parsePolicy decodes a policy document, whose Statement is one statement
// or a list of them.
func parsePolicy(text string) (*policy, error) {
	var doc struct {
		Statement json.RawMessage `json:"Statement"`
	}
	if err := json.Unmarshal([]byte(text), &doc); err != nil {
		return nil, errors.New("it is not a JSON policy document")
	}
	raw := bytes.TrimSpace(doc.Statement)
	var list []statement
	switch {
	case len(raw) == 0:
		return nil, errors.New("it has no Statement")
	case raw[0] == '[':
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, errors.New("its Statement list is malformed")
		}
	default:
		var one statement
		if err := json.Unmarshal(raw, &one); err != nil {
			return nil, errors.New("its Statement is malformed")
		}
		list = []statement{one}
	}
	return &policy{statements: list}, nil
}

// stringList decodes a string or a list of strings; nil for anything else.
func stringList(raw json.RawMessage) []string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return list
	}
	return nil
}

// verdict is what a policy says of a principal and an action.
type verdict struct {
	allowed     bool
	conditional bool // an allowing statement has a Condition
	viaAccount  bool // an allowing statement names the whole account
}

// allows evaluates the policy for principal ("" when unknown: any AWS
// principal named counts) and action.
func (p *policy) allows(principal, action string) verdict {
	var v verdict
	for _, s := range p.statements {
		principalMatch, viaAccount := s.principalMatches(principal)
		if !principalMatch || !s.actionMatches(action) {
			continue
		}
		switch s.Effect {
		case "Deny":
			if len(bytes.TrimSpace(s.Condition)) == 0 {
				return verdict{}
			}
		case "Allow":
			v.allowed = true
			v.conditional = v.conditional || len(bytes.TrimSpace(s.Condition)) > 0
			v.viaAccount = v.viaAccount || viaAccount
		}
	}
	return v
}

// actionMatches reports whether the statement's Action (or NotAction)
// covers action.
func (s *statement) actionMatches(action string) bool {
	if len(s.NotAction) > 0 {
		for _, pattern := range stringList(s.NotAction) {
			if wildcardMatch(pattern, action) {
				return false
			}
		}
		return true
	}
	for _, pattern := range stringList(s.Action) {
		if wildcardMatch(pattern, action) {
			return true
		}
	}
	return false
}

// principalMatches reports whether the statement's Principal (or
// NotPrincipal) covers principal, and whether it does so by naming the
// whole account.
func (s *statement) principalMatches(principal string) (match, viaAccount bool) {
	if len(s.NotPrincipal) > 0 {
		m, _ := principalIn(awsPrincipals(s.NotPrincipal), principal)
		return !m, false
	}
	return principalIn(awsPrincipals(s.Principal), principal)
}

// awsPrincipals returns the AWS principals of a Principal element ("*"
// for everyone).
func awsPrincipals(raw json.RawMessage) []string {
	var star string
	if json.Unmarshal(raw, &star) == nil {
		return []string{star}
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return stringList(m["AWS"])
}

var accountID = regexp.MustCompile(`^[0-9]{12}$`)

// principalIn reports whether one of names covers principal.
func principalIn(names []string, principal string) (match, viaAccount bool) {
	pa, perr := arn.Parse(principal)
	for _, n := range names {
		switch {
		case n == "*":
			return true, false
		case principal == "":
			return true, false
		case n == principal:
			return true, false
		case perr != nil:
			continue
		case accountID.MatchString(n) && n == pa.AccountID, n == "arn:"+pa.Partition+":iam::"+pa.AccountID+":root":
			return true, true
		}
		na, err := arn.Parse(n)
		if err == nil && na.AccountID == pa.AccountID && strings.HasPrefix(na.Resource, "role/") && strings.HasPrefix(pa.Resource, "role/") &&
			lastSegment(na.Resource) == lastSegment(pa.Resource) {
			return true, false
		}
	}
	return false, false
}

// lastSegment returns what follows the last slash of s.
func lastSegment(s string) string { return s[strings.LastIndex(s, "/")+1:] }

// wildcardMatch matches an IAM action pattern (* and ?, case-insensitive).
func wildcardMatch(pattern, s string) bool {
	pattern, s = strings.ToLower(pattern), strings.ToLower(s)
	// Iterative matching with backtracking on the last star.
	p, i, star, mark := 0, 0, -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// principalOf returns the IAM principal of a caller ARN: the role of an
// assumed-role session, the ARN itself otherwise; "" for "".
func principalOf(callerArn string) string {
	a, err := arn.Parse(callerArn)
	if err != nil {
		return callerArn
	}
	if rest, isSession := strings.CutPrefix(a.Resource, "assumed-role/"); isSession && a.Service == "sts" {
		role, _, _ := strings.Cut(rest, "/")
		return "arn:" + a.Partition + ":iam::" + a.AccountID + ":role/" + role
	}
	return callerArn
}
