package tiptest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Setup is how the local AWS's IAM Identity Center application, its
// trusted token issuer and the access role are set up, as an administrator
// would have configured them. AWS.Setup returns the current one and
// AWS.Configure changes it, to set a test's AWS up wrongly on purpose.
//
// Each field is honoured twice, as on AWS: by the read operations that
// describe the setup (sso-admin DescribeApplication, GetApplicationGrant and
// DescribeTrustedTokenIssuer, iam GetRole) and by the exchange itself
// (CreateTokenWithIAM and AssumeRole). A setup that reads wrong fails the
// exchange with the error AWS gives for it.
type Setup struct {
	// Application reports whether the application (AWS.ApplicationArn)
	// exists. Without it, DescribeApplication and GetApplicationGrant
	// answer ResourceNotFoundException and CreateTokenWithIAM answers
	// InvalidClientException.
	Application bool
	// JWTBearerGrant gives the application the JWT bearer grant, which
	// authorises the trusted token issuer with Audiences. Without it,
	// GetApplicationGrant answers ResourceNotFoundException for that grant
	// type and CreateTokenWithIAM refuses the jwt-bearer grant with
	// UnauthorizedClientException.
	JWTBearerGrant bool
	// RefreshGrant gives the application the refresh_token grant
	// (AWSOptions.RefreshGrant): CreateTokenWithIAM then returns refresh
	// tokens and accepts them.
	RefreshGrant bool
	// IssuerURL is the issuer URL of the trusted token issuer
	// (AWSOptions.Issuer to begin with). CreateTokenWithIAM accepts a token
	// only when its iss equals it exactly (a trailing slash matters), and
	// finds the keys through its discovery document. The IAM OIDC identity
	// provider that AssumeRoleWithWebIdentity trusts is not changed.
	IssuerURL string
	// ClaimAttributePath is the claim of a token that the trusted token
	// issuer matches to the users' email address (the identity store
	// attribute "emails.value"); "email" to begin with. A user named NAME
	// has an address NAME@ any domain.
	ClaimAttributePath string
	// Audiences are the audiences the JWT bearer grant authorises for the
	// trusted token issuer (AWSOptions.Audiences to begin with): 1 to 10.
	// The IAM OIDC identity provider's audiences are not changed.
	Audiences []string
	// AccessRole reports whether the access role (AWS.AccessRoleArn)
	// exists. Without it, GetRole answers NoSuchEntity and AssumeRole
	// AccessDenied.
	AccessRole bool
	// AccessRoleSetContext makes the access role's trust policy allow
	// sts:SetContext besides sts:AssumeRole. Without it, an AssumeRole
	// with ProvidedContexts answers AccessDenied.
	AccessRoleSetContext bool
	// AccessRoleTagSession makes the access role's trust policy allow
	// sts:TagSession (true to begin with). Without it, an AssumeRole with
	// Tags or TransitiveTagKeys answers AccessDenied.
	AccessRoleTagSession bool
	// AccessRoleSetSourceIdentity makes the access role's trust policy
	// allow sts:SetSourceIdentity (true to begin with). Without it, an
	// AssumeRole with SourceIdentity answers AccessDenied.
	AccessRoleSetSourceIdentity bool
	// ApplicationRoleTagSession makes the application role's trust policy
	// allow sts:TagSession for web identities. Without it (to begin with,
	// as in a trust policy that allows sts:AssumeRoleWithWebIdentity
	// alone), AssumeRoleWithWebIdentity with a token whose claim
	// "https://aws.amazon.com/tags" passes session tags answers
	// AccessDenied; with it, the session carries the tags, and its
	// transitive tags pass on to the sessions it assumes.
	ApplicationRoleTagSession bool
	// ApplicationRoleSetSourceIdentity makes the application role's trust
	// policy allow sts:SetSourceIdentity for web identities. Without it
	// (to begin with), AssumeRoleWithWebIdentity with a token whose claim
	// "https://aws.amazon.com/source_identity" passes a source identity
	// answers AccessDenied; with it, the session carries that source
	// identity, and so do the sessions it assumes.
	ApplicationRoleSetSourceIdentity bool
	// DeniedActions are IAM actions refused to the server user, among
	// "sso:DescribeApplication", "sso:GetApplicationGrant",
	// "sso:DescribeTrustedTokenIssuer" and "iam:GetRole": they answer
	// AccessDeniedException (sso-admin) or AccessDenied (IAM). Sessions of
	// the roles may call none of them.
	DeniedActions []string
}

// Names of the setup's resources.
const (
	// identityStoreAttribute is the identity store attribute the trusted
	// token issuer matches users by.
	identityStoreAttribute = "emails.value"
	// ttiName is the name of the trusted token issuer.
	ttiName = "tipkit-test-idp"
	// iamSigningRegion is the region in IAM's credential scope: IAM is a
	// global service, signed for us-east-1 in the aws partition.
	iamSigningRegion = "us-east-1"
)

// defaultSetup is the setup of a new AWS: everything in place for o.
func defaultSetup(o AWSOptions) Setup {
	return Setup{
		Application:          true,
		JWTBearerGrant:       true,
		RefreshGrant:         o.RefreshGrant,
		IssuerURL:            o.Issuer,
		ClaimAttributePath:   "email",
		Audiences:            slices.Clone(o.Audiences),
		AccessRole:           true,
		AccessRoleSetContext: true,

		AccessRoleTagSession:        true,
		AccessRoleSetSourceIdentity: true,
	}
}

// clone returns a deep copy of s.
func (s Setup) clone() Setup {
	s.Audiences = slices.Clone(s.Audiences)
	s.DeniedActions = slices.Clone(s.DeniedActions)
	return s
}

// check validates s.
func (s *Setup) check() error {
	switch {
	case s.IssuerURL == "":
		return errors.New("tiptest: Setup.IssuerURL is required")
	case s.ClaimAttributePath == "":
		return errors.New("tiptest: Setup.ClaimAttributePath is required")
	case len(s.Audiences) == 0 || len(s.Audiences) > awsMaxAudiences:
		return fmt.Errorf("tiptest: Setup.Audiences needs 1 to %d audiences, got %d", awsMaxAudiences, len(s.Audiences))
	case slices.Contains(s.Audiences, ""):
		return errors.New("tiptest: Setup.Audiences holds an empty audience")
	}
	return nil
}

// Setup returns a copy of the current setup.
func (a *AWS) Setup() Setup {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.setup.clone()
}

// Configure calls change with a copy of the current setup and makes the
// result the setup, when it is valid (an issuer URL, a claim, 1 to 10
// non-empty audiences). For example, a trusted token issuer registered
// with a trailing slash:
//
//	err := env.AWS.Configure(func(s *tiptest.Setup) { s.IssuerURL += "/" })
//
// Tokens already exchanged and identity contexts already issued are not
// affected.
func (a *AWS) Configure(change func(*Setup)) error {
	next := a.Setup()
	change(&next)
	if err := next.check(); err != nil {
		return err
	}
	next = next.clone()
	a.mu.Lock()
	defer a.mu.Unlock()
	if next.IssuerURL != a.setup.IssuerURL {
		a.ttiKeys = a.provider.keys
		if next.IssuerURL != a.provider.issuer {
			a.ttiKeys = newIssuerKeys(next.IssuerURL, a.httpClient)
		}
	}
	a.setup = next
	return nil
}

// tokenIssuerTrust returns what CreateTokenWithIAM verifies a token
// against, and the setup it was read from.
func (a *AWS) tokenIssuerTrust() (tokenTrust, Setup) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.setup.clone()
	return tokenTrust{issuer: s.IssuerURL, audiences: s.Audiences, keys: a.ttiKeys}, s
}

// denied reports whether the setup refuses action to p: sessions of roles
// may call no administrative read, the server user those not in
// DeniedActions.
func (a *AWS) denied(p *principal, action string) bool {
	if p != a.server {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Contains(a.setup.DeniedActions, action)
}

// InstanceArn returns the ARN of the IAM Identity Center instance.
func (a *AWS) InstanceArn() string { return "arn:aws:sso:::instance/" + identityCenterInstance }

// TrustedTokenIssuerArn returns the ARN of the application's trusted token
// issuer, which DescribeTrustedTokenIssuer describes.
func (a *AWS) TrustedTokenIssuerArn() string {
	return "arn:aws:sso::" + a.account + ":trustedTokenIssuer/" + identityCenterInstance + "/" + a.ttiID
}

// newTTIID returns the id of a trusted token issuer: "tti-" and a UUID.
func newTTIID() string { return "tti-" + newRequestID() }

// policyDocument is an IAM policy document.
type policyDocument struct {
	Version   string            `json:"Version"`
	Statement []policyStatement `json:"Statement"`
}

// policyStatement is one statement of a policy document.
type policyStatement struct {
	Effect    string         `json:"Effect"`
	Principal map[string]any `json:"Principal"`
	Action    any            `json:"Action"`
	Condition map[string]any `json:"Condition,omitempty"`
}

// accessRoleTrust returns the trust policy of the access role: the server
// user and the application role may assume it, and set its context, tag
// its sessions and set their source identity as s allows.
func (a *AWS) accessRoleTrust(s Setup) string {
	var action any = "sts:AssumeRole"
	actions := []string{"sts:AssumeRole"}
	for _, x := range []struct {
		ok     bool
		action string
	}{{s.AccessRoleSetContext, "sts:SetContext"}, {s.AccessRoleTagSession, "sts:TagSession"}, {s.AccessRoleSetSourceIdentity, "sts:SetSourceIdentity"}} {
		if x.ok {
			actions = append(actions, x.action)
		}
	}
	if len(actions) > 1 {
		action = actions
	}
	return marshalPolicy(policyDocument{Version: "2012-10-17", Statement: []policyStatement{{
		Effect:    "Allow",
		Principal: map[string]any{"AWS": []string{a.server.arn, a.ApplicationRoleArn()}},
		Action:    action,
	}}})
}

// applicationRoleTrust returns the trust policy of the application role:
// tokens of the IAM OIDC identity provider, for its audiences, which may
// tag the session and set its source identity as s allows.
func (a *AWS) applicationRoleTrust(s Setup) string {
	host := strings.TrimPrefix(strings.TrimPrefix(a.provider.issuer, "https://"), "http://")
	var action any = "sts:AssumeRoleWithWebIdentity"
	actions := []string{"sts:AssumeRoleWithWebIdentity"}
	if s.ApplicationRoleTagSession {
		actions = append(actions, "sts:TagSession")
	}
	if s.ApplicationRoleSetSourceIdentity {
		actions = append(actions, "sts:SetSourceIdentity")
	}
	if len(actions) > 1 {
		action = actions
	}
	return marshalPolicy(policyDocument{Version: "2012-10-17", Statement: []policyStatement{{
		Effect:    "Allow",
		Principal: map[string]any{"Federated": a.arn("iam", "oidc-provider/"+host)},
		Action:    action,
		Condition: map[string]any{"StringEquals": map[string]any{host + ":aud": a.provider.audiences}},
	}}})
}

// marshalPolicy encodes a policy document; it cannot fail for the maps of
// strings built here.
func marshalPolicy(d policyDocument) string {
	b, err := json.Marshal(d)
	if err != nil {
		return "{}"
	}
	return string(b)
}
