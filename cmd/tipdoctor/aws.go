package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	ssooidctypes "github.com/aws/aws-sdk-go-v2/service/ssooidc/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

// callTimeout bounds one AWS call.
const callTimeout = 20 * time.Second

// apiError returns the AWS error code and message of err, if it is an
// AWS error.
func apiError(err error) (code, message string) {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode(), api.ErrorMessage()
	}
	return "", ""
}

// isAccessDenied reports whether code refuses the caller a permission.
func isAccessDenied(code string) bool {
	switch code {
	case "AccessDenied", "AccessDeniedException", "UnauthorizedOperation":
		return true
	}
	return false
}

// oauthDescription returns the error_description of an SSO OIDC error,
// where SSO OIDC says what went wrong (its message is empty).
func oauthDescription(err error) string {
	var (
		grant   *ssooidctypes.InvalidGrantException
		denied  *ssooidctypes.AccessDeniedException
		unauth  *ssooidctypes.UnauthorizedClientException
		client  *ssooidctypes.InvalidClientException
		request *ssooidctypes.InvalidRequestException
		region  *ssooidctypes.InvalidRequestRegionException
		expired *ssooidctypes.ExpiredTokenException
		scope   *ssooidctypes.InvalidScopeException
		desc    *string
	)
	switch {
	case errors.As(err, &grant):
		desc = grant.Error_description
	case errors.As(err, &denied):
		desc = denied.Error_description
	case errors.As(err, &unauth):
		desc = unauth.Error_description
	case errors.As(err, &client):
		desc = client.Error_description
	case errors.As(err, &request):
		desc = request.Error_description
	case errors.As(err, &region):
		desc = region.Error_description
	case errors.As(err, &expired):
		desc = expired.Error_description
	case errors.As(err, &scope):
		desc = scope.Error_description
	}
	return aws.ToString(desc)
}

// describeError describes a failed AWS call: its code and AWS's message,
// or the error itself when AWS did not answer.
func describeError(op string, err error) string {
	code, msg := apiError(err)
	if msg == "" {
		msg = oauthDescription(err)
	}
	switch {
	case code != "" && msg != "":
		return fmt.Sprintf("%s answered %s: %s", op, code, msg)
	case code != "":
		return fmt.Sprintf("%s answered %s", op, code)
	case errors.Is(err, context.DeadlineExceeded):
		return op + " timed out"
	}
	return fmt.Sprintf("%s failed: %v", op, err)
}

// otherFailure is the result of an AWS call that failed for a reason no
// check explains.
func otherFailure(op string, err error) result {
	return fail(describeError(op, err), "check the AWS configuration and the network, and run again")
}

// denied is the skip of a read refused to the caller.
func (d *doctor) denied(permission, resource string) result {
	return skip("%s may not read it: needs %s on %s (AccessDenied)", orDefault(d.callerArn, "the caller"), permission, resource)
}

// iamRegion returns the region IAM, a global service, is signed for in the
// partition of region.
func iamRegion(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "cn-north-1"
	case strings.HasPrefix(region, "us-gov-"):
		return "us-gov-west-1"
	case strings.HasPrefix(region, "us-isob-"):
		return "us-isob-east-1"
	case strings.HasPrefix(region, "us-iso-"):
		return "us-iso-east-1"
	}
	return "us-east-1"
}

// checkAWSConfig loads the AWS configuration.
func (d *doctor) checkAWSConfig(ctx context.Context) result {
	cfg, err := d.sys.loadAWS(ctx, d.s.region)
	if err != nil {
		return fail("the AWS configuration cannot be loaded: "+err.Error(),
			"fix the shared configuration files or AWS_PROFILE, or set the AWS_ variables")
	}
	if cfg.Region == "" {
		return fail("no AWS region is configured",
			"set AWS_REGION (or -region) to the region of the IAM Identity Center instance: CreateTokenWithIAM must be called there")
	}
	d.cfg = cfg
	if cfg.BaseEndpoint != nil {
		return ok("region %s, endpoint %s", cfg.Region, *cfg.BaseEndpoint)
	}
	return ok("region %s", cfg.Region)
}

// checkIdentity calls GetCallerIdentity with the configured credentials.
func (d *doctor) checkIdentity(ctx context.Context) result {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var credErr error
	if d.cfg.Credentials == nil {
		credErr = errors.New("no credentials provider")
	} else if _, err := d.cfg.Credentials.Retrieve(ctx); err != nil {
		credErr = err
	}
	if credErr != nil {
		if d.s.applicationRoleArn != "" {
			return skip("no AWS credentials are configured (%v): a server with an application role needs none, but the IAM Identity Center and IAM checks read with them", credErr)
		}
		return fail(fmt.Sprintf("no AWS credentials are configured (%v): without %s the server's own credentials sign the exchange", credErr, envApplicationRoleArn),
			"run with the credentials the server runs with (AWS_PROFILE, the AWS_ access key variables, an instance or task role), or set "+envApplicationRoleArn)
	}
	out, err := sts.NewFromConfig(d.cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		code, _ := apiError(err)
		switch code {
		case "InvalidClientTokenId", "UnrecognizedClientException":
			return fail(describeError("GetCallerIdentity", err)+"; AWS does not know the access key (deleted, inactive, or of another partition)",
				"use current credentials of the server's principal")
		case "SignatureDoesNotMatch":
			return fail(describeError("GetCallerIdentity", err)+"; the secret key does not belong to the access key",
				"use the secret access key that goes with the access key id")
		case "ExpiredToken", "ExpiredTokenException", "RequestExpired":
			return fail(describeError("GetCallerIdentity", err)+"; the session credentials expired",
				"renew them (for example aws sso login, or a new role session) and run again")
		}
		return otherFailure("GetCallerIdentity", err)
	}
	d.callerArn, d.account = aws.ToString(out.Arn), aws.ToString(out.Account)
	if d.s.applicationRoleArn != "" {
		return ok("%s (reads the setup; the application role signs the exchange)", d.callerArn)
	}
	return ok("%s (signs the exchange, as the server would)", d.callerArn)
}

// checkApplicationRole assumes the application role with the token, as
// the server does before its first exchange.
func (d *doctor) checkApplicationRole(ctx context.Context) result {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	client := sts.NewFromConfig(d.cfg, func(o *sts.Options) { o.Credentials = aws.AnonymousCredentials{} })
	out, err := client.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
		RoleArn:          aws.String(d.s.applicationRoleArn),
		RoleSessionName:  aws.String("tipdoctor"),
		WebIdentityToken: aws.String(d.token),
		DurationSeconds:  aws.Int32(900),
	})
	if err != nil {
		return d.webIdentityFailure(err)
	}
	if out.Credentials != nil {
		d.rep.secrets = append(d.rep.secrets, aws.ToString(out.Credentials.SecretAccessKey), aws.ToString(out.Credentials.SessionToken))
	}
	arnOf := ""
	if out.AssumedRoleUser != nil {
		arnOf = aws.ToString(out.AssumedRoleUser.Arn)
	}
	//lint:ignore SA1019 SessionTokenUtilization, its replacement, is answered for every session and tells nothing of tags.
	packed := aws.ToInt32(out.PackedPolicySize)
	_, tagClaim := d.tok.claims["https://aws.amazon.com/tags"]
	_, sourceClaim := d.tok.claims["https://aws.amazon.com/source_identity"]
	if aws.ToString(out.SourceIdentity) != "" || packed > 0 || tagClaim || sourceClaim {
		return fail(fmt.Sprintf("the token assumes %s, but the session carries session tags or a source identity taken from the token (claims https://aws.amazon.com/tags, https://aws.amazon.com/source_identity): "+
			"the server would pass one user's to every user's session, and refuses it (SessionTagsFromToken, SourceIdentityFromToken)", d.s.applicationRoleArn),
			"have the identity provider leave those claims out of the tokens of this audience, or remove sts:TagSession and sts:SetSourceIdentity from the application role's trust policy")
	}
	return ok("the token assumes %s as %s", d.s.applicationRoleArn, arnOf)
}

// oidcProviderHost is the name of the IAM OIDC identity provider of an
// issuer: its URL without the scheme.
func oidcProviderHost(iss string) string {
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(iss, "https://"), "http://"), "/")
}

// webIdentityFailure explains a refused AssumeRoleWithWebIdentity.
func (d *doctor) webIdentityFailure(err error) result {
	const op = "AssumeRoleWithWebIdentity"
	code, _ := apiError(err)
	host := oidcProviderHost(d.tok.iss)
	account := ""
	if a, perr := arn.Parse(d.s.applicationRoleArn); perr == nil {
		account = a.AccountID
	}
	switch code {
	case "InvalidIdentityToken":
		return fail(fmt.Sprintf("%s; STS found no IAM OIDC identity provider of account %s for the token's iss %q with its aud %s among the client IDs, or the provider's keys do not verify it",
			describeError(op, err), account, d.tok.iss, quoteList(d.tok.aud)),
			fmt.Sprintf("create the IAM OIDC identity provider: aws iam create-open-id-connect-provider --url %s --client-id-list %s", d.tok.iss, strings.Join(d.tok.aud, ",")))
	case "AccessDenied":
		return fail(fmt.Sprintf("%s; the trust policy of %s does not allow sts:AssumeRoleWithWebIdentity for this token", describeError(op, err), d.s.applicationRoleArn),
			fmt.Sprintf(`trust {"Principal":{"Federated":"arn:aws:iam::%s:oidc-provider/%s"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"%s:aud":"%s"}}}`,
				account, host, host, d.tok.aud[0]))
	case "ExpiredTokenException":
		return fail(describeError(op, err), "get a fresh token from the identity provider")
	case "IDPCommunicationError":
		return fail(describeError(op, err)+"; STS could not fetch the issuer's keys", "make the issuer's discovery document and key set reachable from AWS")
	case "IDPRejectedClaim":
		return fail(describeError(op, err), "check the IAM OIDC identity provider's thumbprints and client IDs")
	}
	return otherFailure(op, err)
}
