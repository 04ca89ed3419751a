package main

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	ssoadmintypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"
)

// admin returns the sso-admin client of the configuration.
func (d *doctor) admin() *ssoadmin.Client { return ssoadmin.NewFromConfig(d.cfg) }

// accountHint says when the ARN's account is not the caller's.
func (d *doctor) accountHint(resourceArn string) string {
	a, err := arn.Parse(resourceArn)
	if err != nil || d.account == "" || a.AccountID == d.account {
		return ""
	}
	return fmt.Sprintf(" (the ARN names account %s and the credentials are of account %s)", a.AccountID, d.account)
}

// checkApplication describes the application.
func (d *doctor) checkApplication(ctx context.Context) result {
	if d.s.applicationArn == "" {
		return skip("%s (-application-arn) is not set", envApplicationArn)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	out, err := d.admin().DescribeApplication(ctx, &ssoadmin.DescribeApplicationInput{ApplicationArn: aws.String(d.s.applicationArn)})
	if err != nil {
		code, _ := apiError(err)
		switch {
		case isAccessDenied(code):
			return d.denied("sso:DescribeApplication", d.s.applicationArn)
		case code == "ResourceNotFoundException":
			return fail(fmt.Sprintf("IAM Identity Center in %s has no application %s%s", d.cfg.Region, d.s.applicationArn, d.accountHint(d.s.applicationArn)),
				fmt.Sprintf("set %s to the customer managed application's ARN (IAM Identity Center, Applications), and AWS_REGION to the Identity Center instance's region", envApplicationArn))
		case code == "ValidationException":
			return fail(describeError("DescribeApplication", err), fmt.Sprintf("set %s to the application's ARN as IAM Identity Center shows it", envApplicationArn))
		}
		return otherFailure("DescribeApplication", err)
	}
	if out.Status != ssoadmintypes.ApplicationStatusEnabled {
		return fail(fmt.Sprintf("the application %q is %s", aws.ToString(out.Name), out.Status),
			"enable it: aws sso-admin update-application --application-arn "+d.s.applicationArn+" --status ENABLED")
	}
	return ok("%q, %s", aws.ToString(out.Name), out.Status)
}

// checkGrant reads the application's JWT bearer grant.
func (d *doctor) checkGrant(ctx context.Context) result {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	out, err := d.admin().GetApplicationGrant(ctx, &ssoadmin.GetApplicationGrantInput{
		ApplicationArn: aws.String(d.s.applicationArn),
		GrantType:      ssoadmintypes.GrantTypeJwtBearer,
	})
	fix := fmt.Sprintf("authorize the trusted token issuer with the audience: aws sso-admin put-application-grant --application-arn %s "+
		"--grant-type %s --grant 'JwtBearer={AuthorizedTokenIssuers=[{TrustedTokenIssuerArn=TTI_ARN,AuthorizedAudiences=[%s]}]}'",
		d.s.applicationArn, ssoadmintypes.GrantTypeJwtBearer, d.audienceHint())
	if err != nil {
		code, _ := apiError(err)
		switch {
		case isAccessDenied(code):
			return d.denied("sso:GetApplicationGrant", d.s.applicationArn)
		case code == "ResourceNotFoundException":
			return fail("the application has no JWT bearer grant: IAM Identity Center refuses its CreateTokenWithIAM (UnauthorizedClientException)", fix)
		}
		return otherFailure("GetApplicationGrant", err)
	}
	g, isJWT := out.Grant.(*ssoadmintypes.GrantMemberJwtBearer)
	if !isJWT || len(g.Value.AuthorizedTokenIssuers) == 0 {
		return fail("the application's JWT bearer grant authorizes no trusted token issuer", fix)
	}
	d.grantIssuers = g.Value.AuthorizedTokenIssuers
	ids := make([]string, len(d.grantIssuers))
	for i, ti := range d.grantIssuers {
		ids[i] = lastSegment(aws.ToString(ti.TrustedTokenIssuerArn))
	}
	return ok("the JWT bearer grant authorizes %s", strings.Join(ids, ", "))
}

// audienceHint is the audience to put in a grant: the token's, else the
// configured one.
func (d *doctor) audienceHint() string {
	if d.tok != nil && len(d.tok.aud) > 0 {
		return d.tok.aud[0]
	}
	if len(d.s.audience) > 0 {
		return d.s.audience[0]
	}
	return "AUDIENCE"
}

// checkTrustedIssuer finds the grant's trusted token issuer of the token's
// iss and checks its claim mapping.
func (d *doctor) checkTrustedIssuer(ctx context.Context) result {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var seen []trustedIssuer
	for _, ai := range d.grantIssuers {
		ttiArn := aws.ToString(ai.TrustedTokenIssuerArn)
		out, err := d.admin().DescribeTrustedTokenIssuer(ctx, &ssoadmin.DescribeTrustedTokenIssuerInput{TrustedTokenIssuerArn: aws.String(ttiArn)})
		if err != nil {
			if code, _ := apiError(err); isAccessDenied(code) {
				return d.denied("sso:DescribeTrustedTokenIssuer", ttiArn)
			}
			return otherFailure("DescribeTrustedTokenIssuer", err)
		}
		cfg, isOIDC := out.TrustedTokenIssuerConfiguration.(*ssoadmintypes.TrustedTokenIssuerConfigurationMemberOidcJwtConfiguration)
		if !isOIDC {
			continue
		}
		seen = append(seen, trustedIssuer{
			arn: ttiArn, name: aws.ToString(out.Name),
			issuerURL: aws.ToString(cfg.Value.IssuerUrl), claim: aws.ToString(cfg.Value.ClaimAttributePath),
			attribute: aws.ToString(cfg.Value.IdentityStoreAttributePath), audiences: ai.AuthorizedAudiences,
		})
	}
	for i := range seen {
		if seen[i].issuerURL == d.tok.iss {
			d.tti = &seen[i]
			return d.claimMapping(d.tti)
		}
	}
	var found []string
	for _, ti := range seen {
		found = append(found, fmt.Sprintf("%s (%q) has the issuer URL %q: %s", lastSegment(ti.arn), ti.name, ti.issuerURL,
			difference("the trusted token issuer's URL", ti.issuerURL, "the token's iss", d.tok.iss)))
	}
	cause := fmt.Sprintf("the token's iss is %q, and no trusted token issuer of the JWT bearer grant has it", d.tok.iss)
	if len(found) > 0 {
		cause += ": " + strings.Join(found, "; ")
	}
	return fail(cause+"; IAM Identity Center refuses the token (InvalidGrantException)",
		fmt.Sprintf("IAM Identity Center compares the URL byte for byte, and an existing trusted token issuer's URL cannot be changed: "+
			"create one with the issuer URL %s (aws sso-admin create-trusted-token-issuer) and authorize it in the application's JWT bearer grant, "+
			"or have the identity provider write the registered URL in iss", d.tok.iss))
}

// claimMapping checks the trusted token issuer's claim against the token.
func (d *doctor) claimMapping(ti *trustedIssuer) result {
	if ti.claim != d.s.userClaim {
		v, present := claimValue(d.tok.claims, ti.claim)
		if !present || v == "" {
			return fail(fmt.Sprintf("the trusted token issuer %s maps users by the claim %s, which the token lacks (or is not a string)", lastSegment(ti.arn), ti.claim),
				fmt.Sprintf("have the identity provider put %s in its tokens, or update the trusted token issuer's claim attribute path (aws sso-admin update-trusted-token-issuer)", ti.claim))
		}
		return ok("%s has the token's iss; maps its %s %q (not %s, as -user-claim says) to %s",
			lastSegment(ti.arn), ti.claim, v, d.s.userClaim, ti.attribute)
	}
	return ok("%s has the token's iss and maps %s to %s", lastSegment(ti.arn), ti.claim, ti.attribute)
}

// checkGrantAudience compares the grant's authorized audiences with the
// token's aud.
func (d *doctor) checkGrantAudience(context.Context) result {
	for _, a := range d.tok.aud {
		if slices.Contains(d.tti.audiences, a) {
			return ok("the JWT bearer grant authorizes %q", a)
		}
	}
	return fail(fmt.Sprintf("the JWT bearer grant authorizes the audiences %s for %s, and the token's aud is %s; IAM Identity Center refuses the token (InvalidGrantException)",
		quoteList(d.tti.audiences), lastSegment(d.tti.arn), quoteList(d.tok.aud)),
		fmt.Sprintf("add %q to the grant's authorized audiences (aws sso-admin put-application-grant replaces the whole grant: list every audience), or have the identity provider issue tokens for one of %s",
			d.tok.aud[0], quoteList(d.tti.audiences)))
}

// signingPrincipal returns the principal that signs the exchange's
// AssumeRole: the application role, or the operator's principal (a role
// session given as its role). It is "" when unknown.
func (d *doctor) signingPrincipal() string {
	if d.s.applicationRoleArn != "" {
		return d.s.applicationRoleArn
	}
	return principalOf(d.callerArn)
}

// checkAccessRole reads the access role's trust policy.
func (d *doctor) checkAccessRole(ctx context.Context) result {
	if d.s.accessRoleArn == "" {
		return skip("%s (-access-role-arn) is not set", envAccessRoleArn)
	}
	role, err := arn.Parse(d.s.accessRoleArn)
	if err != nil {
		return skip("%s is not an ARN", envAccessRoleArn)
	}
	name := role.Resource[strings.LastIndex(role.Resource, "/")+1:]
	if d.account != "" && role.AccountID != d.account {
		return skip("the access role is in account %s and the credentials in %s: GetRole reads its own account only", role.AccountID, d.account)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	client := iam.NewFromConfig(d.cfg, func(o *iam.Options) { o.Region = iamRegion(d.cfg.Region) })
	out, err := client.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
	if err != nil {
		code, _ := apiError(err)
		switch {
		case isAccessDenied(code):
			return d.denied("iam:GetRole", d.s.accessRoleArn)
		case code == "NoSuchEntity":
			return fail(fmt.Sprintf("there is no role %s in account %s", name, role.AccountID),
				fmt.Sprintf("create the access role, or set %s to the role the users' sessions are made of", envAccessRoleArn))
		}
		return otherFailure("GetRole", err)
	}
	if got := aws.ToString(out.Role.Arn); got != d.s.accessRoleArn {
		return fail(fmt.Sprintf("the role %s has the ARN %s, not %s", name, got, d.s.accessRoleArn),
			fmt.Sprintf("set %s=%s", envAccessRoleArn, got))
	}
	doc, err := decodePolicy(aws.ToString(out.Role.AssumeRolePolicyDocument))
	if err != nil {
		return fail("the trust policy of "+d.s.accessRoleArn+" cannot be read: "+err.Error(), "check the role's trust policy in IAM")
	}
	principal := d.signingPrincipal()
	assume := doc.allows(principal, "sts:AssumeRole")
	setContext := doc.allows(principal, "sts:SetContext")
	who := principal
	if who == "" {
		who = "any principal (the caller's identity is unknown)"
	}
	if !assume.allowed || !setContext.allowed {
		var missing []string
		if !assume.allowed {
			missing = append(missing, "sts:AssumeRole")
		}
		if !setContext.allowed {
			missing = append(missing, "sts:SetContext")
		}
		return fail(fmt.Sprintf("the trust policy of %s does not allow %s to %s; STS refuses the user's AssumeRole with AccessDenied",
			d.s.accessRoleArn, strings.Join(missing, " and "), who),
			fmt.Sprintf(`add to its trust policy {"Effect":"Allow","Principal":{"AWS":"%s"},"Action":["sts:AssumeRole","sts:SetContext"]}`,
				orDefault(principal, "SERVER_ROLE_ARN")))
	}
	note := ""
	if assume.conditional || setContext.conditional {
		note = ", under conditions the doctor does not evaluate"
	}
	if assume.viaAccount || setContext.viaAccount {
		note += "; it trusts the whole account, so the principal's own policy must allow both actions on the role too"
	}
	return ok("allows %s sts:AssumeRole, sts:SetContext%s", who, note)
}

// decodePolicy decodes a policy document as IAM returns it, URL-encoded.
func decodePolicy(raw string) (*policy, error) {
	text, err := url.PathUnescape(raw)
	if err != nil {
		text = raw
	}
	p, err := parsePolicy(text)
	if err != nil {
		if alt, qerr := url.QueryUnescape(raw); qerr == nil {
			if p2, err2 := parsePolicy(alt); err2 == nil {
				return p2, nil
			}
		}
		return nil, err
	}
	return p, nil
}
