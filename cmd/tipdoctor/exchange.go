package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssooidc"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/tipkit/tipkit/exchange"
)

// exchangeTimeout bounds the exchange.
const exchangeTimeout = time.Minute

// checkExchange exchanges the token with tipkit's Exchanger, as the
// server does.
func (d *doctor) checkExchange(ctx context.Context) result {
	if failed := d.failed(); len(failed) > 0 {
		slices.Sort(failed)
		return skip("not attempted: %s failed above, and the exchange would spend the token for nothing; mend that first", strings.Join(failed, ", "))
	}
	if d.status["aws.config"] != statusOK {
		return skip("needs aws.config, which did not pass")
	}
	o := exchange.Options{
		ApplicationArn:     d.s.applicationArn,
		AccessRoleArn:      d.s.accessRoleArn,
		ApplicationRoleArn: d.s.applicationRoleArn,
		Config:             d.cfg,
	}
	if o.ApplicationRoleArn == "" {
		o.SSOOIDCClient = ssooidc.NewFromConfig(d.cfg)
		o.STSClient = sts.NewFromConfig(d.cfg)
	}
	x, err := exchange.New(o)
	if err != nil {
		return fail("tipkit refuses the configuration: "+err.Error(), "fix the TIPKIT_ variables")
	}
	ctx, cancel := context.WithTimeout(ctx, exchangeTimeout)
	defer cancel()
	s, err := x.Exchange(ctx, d.token)
	if err != nil {
		return d.exchangeFailure(err)
	}
	d.rep.secrets = append(d.rep.secrets, s.IdentityContext, s.RefreshToken, s.Credentials.SecretAccessKey, s.Credentials.SessionToken)
	d.session = s
	return ok("CreateTokenWithIAM and AssumeRole succeeded; identity context until %s",
		s.ContextExpires.UTC().Format(time.RFC3339))
}

// checkUserIdentity asks STS who the user's credentials are.
func (d *doctor) checkUserIdentity(ctx context.Context) result {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	creds := d.session.Credentials
	client := sts.NewFromConfig(d.cfg, func(o *sts.Options) {
		o.Credentials = credentials.StaticCredentialsProvider{Value: creds}
	})
	out, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return otherFailure("GetCallerIdentity with the user's credentials", err)
	}
	return ok("AWS sees %s with the user's identity context, until %s (in %s)",
		aws.ToString(out.Arn), creds.Expires.UTC().Format(time.RFC3339), ago(creds.Expires.Sub(d.sys.now())))
}

// exchangeFailure explains a failed exchange.
func (d *doctor) exchangeFailure(err error) result {
	var e *exchange.Error
	if !errors.As(err, &e) {
		return otherFailure("the exchange", err)
	}
	said := describeError(e.Op, e.Err)
	if e.Code != "" && e.Err == nil {
		said = e.Op + ": " + e.Code
	}
	if errors.Is(e, exchange.ErrUnavailable) {
		return fail(said+"; AWS did not serve the exchange (throttling, a time-out or an AWS error)", "run again later")
	}
	switch e.Op {
	case "AssumeRoleWithWebIdentity":
		return d.webIdentityFailure(e.Err)
	case "CreateTokenWithIAM":
		return d.createTokenFailure(e, said)
	case "AssumeRole":
		return d.assumeRoleFailure(e, said)
	}
	return fail(said, "fix the configuration and run again with a fresh token")
}

// createTokenFailure explains a refused CreateTokenWithIAM.
func (d *doctor) createTokenFailure(e *exchange.Error, said string) result {
	caller := orDefault(d.signingPrincipal(), "the signing principal")
	switch e.Code {
	case "InvalidGrantException":
		r := fail(said+"; IAM Identity Center refused the token; the checks above leave these causes open, most likely first:",
			"mend the first cause that applies, then run again with a fresh token")
		r.Causes = d.invalidGrantCauses()
		return r
	case "AccessDeniedException":
		r := fail(said+"; IAM Identity Center refused the user or the caller; likely causes:",
			"assign the user (or a group of theirs) to the application, and allow the caller in the application's authentication method")
		r.Causes = []string{
			"the user is not assigned to the application, directly or through a group, and the application requires assignments",
			fmt.Sprintf("the caller %s is not allowed by the application's authentication method (aws sso-admin put-application-authentication-method with the IAM principal)", caller),
			fmt.Sprintf("the caller %s lacks sso-oauth:CreateTokenWithIAM in its own policy", caller),
		}
		return r
	case "UnauthorizedClientException":
		return fail(said+"; the application is not authorized for the JWT bearer grant",
			"add the JWT bearer grant to the application (aws sso-admin put-application-grant)")
	case "InvalidClientException":
		return fail(fmt.Sprintf("%s; IAM Identity Center in %s does not know the application %s", said, d.cfg.Region, d.s.applicationArn),
			fmt.Sprintf("set %s to the application's ARN, and AWS_REGION to the Identity Center instance's region", envApplicationArn))
	case "InvalidRequestRegionException":
		return fail(fmt.Sprintf("%s; %s is not the region of the IAM Identity Center instance", said, d.cfg.Region),
			"set AWS_REGION to the Identity Center instance's region")
	case "ExpiredTokenException":
		return fail(said+"; the token expired", "run again with a fresh token")
	}
	return fail(said, "fix the setup that AWS names and run again with a fresh token")
}

// invalidGrantCauses lists what can make IAM Identity Center refuse the
// token with InvalidGrantException that the checks did not rule out, most
// likely first.
func (d *doctor) invalidGrantCauses() []string {
	var causes []string
	if d.cfg.BaseEndpoint == nil && privateHost(d.tok.iss) {
		causes = append(causes, fmt.Sprintf("IAM Identity Center cannot fetch the keys of %q: the issuer is on a private or loopback address, and AWS fetches its discovery document and key set from the internet", d.tok.iss))
	}
	if d.status["identitycenter.issuer"] != statusOK {
		causes = append(causes, fmt.Sprintf("no trusted token issuer of the application's JWT bearer grant has exactly the token's iss %q as issuer URL (identitycenter.issuer did not run: %s)",
			d.tok.iss, orDefault(string(d.status["identitycenter.issuer"]), "not run")))
	}
	if d.status["identitycenter.audience"] != statusOK {
		causes = append(causes, fmt.Sprintf("the application's JWT bearer grant does not authorize the token's aud %s (identitycenter.audience did not run)", quoteList(d.tok.aud)))
	}
	claim, attribute := d.s.userClaim, "the attribute the trusted token issuer maps it to"
	if d.tti != nil {
		claim, attribute = d.tti.claim, d.tti.attribute
	}
	value, _ := claimValue(d.tok.claims, claim)
	causes = append(causes,
		fmt.Sprintf("no user of IAM Identity Center has %s equal to the token's %s %q: add the user, or correct the value (user attributes are synchronized from the directory)", attribute, claim, value),
		"the token was exchanged before: IAM Identity Center accepts a token id (jti) once in 24 hours, and a server, or an earlier run with -exchange, may have spent it",
	)
	return causes
}

// privateHost reports whether the host of rawURL is loopback, private or
// link-local, which AWS cannot reach.
func privateHost(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" || strings.HasSuffix(host, ".local") || strings.HasSuffix(host, ".internal") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast())
}

// assumeRoleFailure explains a refused AssumeRole of the access role.
func (d *doctor) assumeRoleFailure(e *exchange.Error, said string) result {
	principal := orDefault(d.signingPrincipal(), "the signing principal")
	if e.Code == "AccessDenied" {
		r := fail(said+"; STS refused the user's session on the access role; likely causes:",
			fmt.Sprintf(`allow %s sts:AssumeRole and sts:SetContext on %s, in the role's trust policy and in its own policy`, principal, d.s.accessRoleArn))
		if d.status["iam.access-role"] != statusOK {
			r.Causes = append(r.Causes, fmt.Sprintf("the trust policy of %s does not allow %s sts:AssumeRole and sts:SetContext (iam.access-role did not run)", d.s.accessRoleArn, principal))
		}
		r.Causes = append(r.Causes,
			fmt.Sprintf("the policy of %s does not allow sts:AssumeRole and sts:SetContext on %s", principal, d.s.accessRoleArn),
			"a service control policy or permissions boundary denies it")
		return r
	}
	return fail(said, "fix what AWS names and run again with a fresh token")
}
