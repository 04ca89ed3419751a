package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ssoadmintypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"

	"github.com/tipkit/tipkit/exchange"
)

// doctor runs the checks in order and remembers what they found for the
// later ones.
type doctor struct {
	s     settings
	token string
	sys   system
	rep   *reporter
	// status of every check run so far.
	status map[string]status

	tok *tokenInfo // the token, decoded without verification

	jwksURI string // from the discovery document

	cfg       aws.Config
	callerArn string // the operator's principal, from GetCallerIdentity
	account   string // its account

	// From Identity Center's side.
	grantIssuers []ssoadmintypes.AuthorizedTokenIssuer
	tti          *trustedIssuer // the grant's issuer whose URL is the token's iss

	session *exchange.Session // from -exchange
}

// trustedIssuer is what DescribeTrustedTokenIssuer tells of one trusted
// token issuer.
type trustedIssuer struct {
	arn, name, issuerURL, claim, attribute string
	audiences                              []string // authorized by the grant
}

// check is one check: its name, the checks that must have passed for it
// to run, and what it does.
type check struct {
	name  string
	needs []string
	run   func(ctx context.Context) result
}

// diagnose runs every check in order.
func (d *doctor) diagnose(ctx context.Context) {
	checks := []check{
		{"token.format", nil, d.checkFormat},
		{"token.claims", []string{"token.format"}, d.checkClaims},
		{"token.expiry", []string{"token.format"}, d.checkExpiry},
		{"token.jti", []string{"token.format"}, d.checkJTI},
		{"token.user-claim", []string{"token.format"}, d.checkUserClaim},
		{"issuer.config", []string{"token.claims"}, d.checkIssuerConfig},
		{"issuer.discovery", []string{"token.claims"}, d.checkDiscovery},
		{"issuer.keys", []string{"issuer.discovery"}, d.checkKeys},
		{"issuer.signature", []string{"issuer.keys"}, d.checkSignature},
		{"audience", []string{"token.claims"}, d.checkAudience},
		{"aws.config", nil, d.checkAWSConfig},
		{"aws.identity", []string{"aws.config"}, d.checkIdentity},
	}
	if d.s.applicationRoleArn != "" {
		checks = append(checks, check{"aws.application-role", []string{"aws.config", "token.claims", "token.expiry"}, d.checkApplicationRole})
	}
	checks = append(checks,
		check{"identitycenter.application", []string{"aws.identity"}, d.checkApplication},
		check{"identitycenter.grant", []string{"identitycenter.application"}, d.checkGrant},
		check{"identitycenter.issuer", []string{"identitycenter.grant", "token.claims"}, d.checkTrustedIssuer},
		check{"identitycenter.audience", []string{"identitycenter.issuer"}, d.checkGrantAudience},
		check{"iam.access-role", []string{"aws.identity"}, d.checkAccessRole},
	)
	if d.s.exchange {
		checks = append(checks,
			check{"exchange", nil, d.checkExchange},
			check{"exchange.identity", []string{"exchange"}, d.checkUserIdentity},
		)
	}
	for _, c := range checks {
		r := d.runCheck(ctx, c)
		r.Check = c.name
		d.status[c.name] = r.Status
		d.rep.print(r)
	}
}

// runCheck runs c unless a check it needs did not pass.
func (d *doctor) runCheck(ctx context.Context, c check) result {
	for _, need := range c.needs {
		if st := d.status[need]; st != statusOK {
			return skip("needs %s, which did not pass (%s)", need, orDefault(string(st), "not run"))
		}
	}
	return c.run(ctx)
}

// failed returns the names of the checks that failed so far.
func (d *doctor) failed() []string {
	var names []string
	for name, st := range d.status {
		if st == statusFail {
			names = append(names, name)
		}
	}
	return names
}

// ok is a passed check.
func ok(format string, a ...any) result {
	return result{Status: statusOK, Detail: fmt.Sprintf(format, a...)}
}

// skip is a check that could not run.
func skip(format string, a ...any) result {
	return result{Status: statusSkip, Detail: fmt.Sprintf(format, a...)}
}

// fail is a failed check, with its cause and fix.
func fail(cause, fix string) result {
	return result{Status: statusFail, Cause: cause, Fix: fix}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// quoteList quotes each string of list and joins them.
func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
