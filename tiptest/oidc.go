package tiptest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// OAuth grant types and token types of CreateTokenWithIAM.
const (
	grantJWTBearer        = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	grantRefreshToken     = "refresh_token"
	tokenTypeRefreshToken = "urn:ietf:params:oauth:token-type:refresh_token"
	// jtiMemory is how long Identity Center remembers an exchanged jti.
	jtiMemory = 24 * time.Hour
)

// oidcScopes are the scopes the application accepts; defaultScopes are
// granted when the request names none.
var (
	oidcScopes    = map[string]bool{"openid": true, "aws": true, "sts:identity_context": true}
	defaultScopes = []string{"sts:identity_context", "openid", "aws"}
)

// oidcSigErrors turns a refused signature into the error code of the AWS
// front end of a restJson1 service.
var oidcSigErrors = map[sigv4Problem]string{
	sigMissing:      "MissingAuthenticationTokenException",
	sigIncomplete:   "IncompleteSignatureException",
	sigUnknownKey:   "UnrecognizedClientException",
	sigBadToken:     "UnrecognizedClientException",
	sigExpired:      "ExpiredTokenException",
	sigMismatch:     "InvalidSignatureException",
	sigWrongService: "InvalidSignatureException",
	sigWrongRegion:  "InvalidRequestRegionException",
}

// createTokenWithIAMInput is the JSON body of CreateTokenWithIAM.
type createTokenWithIAMInput struct {
	ClientID           string   `json:"clientId"`
	GrantType          string   `json:"grantType"`
	Assertion          string   `json:"assertion"`
	RefreshToken       string   `json:"refreshToken"`
	Code               string   `json:"code"`
	CodeVerifier       string   `json:"codeVerifier"`
	RedirectURI        string   `json:"redirectUri"`
	RequestedTokenType string   `json:"requestedTokenType"`
	SubjectToken       string   `json:"subjectToken"`
	SubjectTokenType   string   `json:"subjectTokenType"`
	Scope              []string `json:"scope"`
}

// createTokenWithIAMOutput is the JSON answer of CreateTokenWithIAM.
type createTokenWithIAMOutput struct {
	AccessToken          string                `json:"accessToken"`
	TokenType            string                `json:"tokenType"`
	ExpiresIn            int64                 `json:"expiresIn"`
	RefreshToken         string                `json:"refreshToken,omitempty"`
	IDToken              string                `json:"idToken"`
	IssuedTokenType      string                `json:"issuedTokenType,omitempty"`
	Scope                []string              `json:"scope"`
	AWSAdditionalDetails *awsAdditionalDetails `json:"awsAdditionalDetails,omitempty"`
}

type awsAdditionalDetails struct {
	IdentityContext string `json:"identityContext"`
}

// refreshTokenState is a refresh token issued and not yet used.
type refreshTokenState struct {
	user    string
	expires time.Time
}

// serveOIDC serves SSO OIDC: POST /token?aws_iam=t is CreateTokenWithIAM.
func (a *AWS) serveOIDC(w http.ResponseWriter, r *http.Request) {
	op := opCreateTokenWithIAM
	if r.URL.Query().Get("aws_iam") != "t" {
		op = "CreateToken"
	}
	a.record(op, r)
	body, readErr := readBody(w, r)
	if err := a.applyFault(r.Context(), op); err != nil {
		var aerr *apiError
		if errors.As(err, &aerr) {
			writeOIDCError(w, aerr)
		}
		return
	}
	out, aerr := a.runOIDC(r, body, readErr, op)
	if aerr != nil {
		writeOIDCError(w, aerr)
		return
	}
	writeJSON(w, out)
}

// runOIDC checks the request and its signature and runs
// CreateTokenWithIAM.
func (a *AWS) runOIDC(r *http.Request, body []byte, readErr error, op string) (*createTokenWithIAMOutput, *apiError) {
	switch {
	case op != opCreateTokenWithIAM || r.Method != http.MethodPost:
		return nil, newAPIError("InvalidRequestException", "Only POST /token?aws_iam=t (CreateTokenWithIAM) is served")
	case readErr != nil:
		return nil, newAPIError("InvalidRequestException", "The request body could not be read or is too large")
	}
	caller, serr := a.authenticate(a.ssoVerifier, r, body)
	if serr != nil {
		return nil, a.oidcSigError(serr)
	}
	var in createTokenWithIAMInput
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, newAPIError("InvalidRequestException", "The request body is not valid JSON for CreateTokenWithIAM")
	}
	return a.createTokenWithIAM(r.Context(), caller, &in)
}

// oidcSigError turns a refused signature into the restJson1 error.
func (a *AWS) oidcSigError(e *sigv4Error) *apiError {
	aerr := newAPIError(oidcSigErrors[e.problem], e.msg)
	switch e.problem {
	case sigWrongRegion:
		aerr.msg = "The request was made in a region other than the Identity Center instance's region " + a.region
		aerr.fields = map[string]string{"endpoint": a.URL(), "region": a.region}
	case sigExpired:
		aerr.status = http.StatusForbidden
	}
	return aerr
}

// createTokenWithIAM checks the client, the caller, the scopes and the
// grant, and issues the tokens.
func (a *AWS) createTokenWithIAM(ctx context.Context, caller *principal, in *createTokenWithIAMInput) (*createTokenWithIAMOutput, *apiError) {
	trust, setup := a.tokenIssuerTrust()
	if in.ClientID != a.ApplicationArn() || !setup.Application {
		return nil, newAPIError("InvalidClientException", "Invalid client: unknown clientId")
	}
	if in.GrantType == "" {
		return nil, newAPIError("InvalidRequestException", "grantType is required")
	}
	if !a.mayUseApplication(caller) {
		return nil, newAPIError("AccessDeniedException",
			"The caller "+caller.arn+" is not allowed by the application's authentication policy")
	}
	scopes, aerr := checkScopes(in.Scope)
	if aerr != nil {
		return nil, aerr
	}
	var user string
	switch in.GrantType {
	case grantJWTBearer:
		if !setup.JWTBearerGrant {
			return nil, newAPIError("UnauthorizedClientException", "The application is not authorized for the jwt-bearer grant")
		}
		user, aerr = a.jwtBearerGrant(ctx, in.Assertion, trust, setup.ClaimAttributePath)
	case grantRefreshToken:
		user, aerr = a.refreshTokenGrant(in.RefreshToken, setup.RefreshGrant)
	default:
		aerr = newAPIError("UnsupportedGrantTypeException", "Unsupported grant type: "+in.GrantType)
	}
	if aerr != nil {
		return nil, aerr
	}
	return a.issueTokens(user, scopes, setup.RefreshGrant)
}

// checkScopes returns the requested scopes, or the default ones.
func checkScopes(requested []string) ([]string, *apiError) {
	if len(requested) == 0 {
		return append([]string(nil), defaultScopes...), nil
	}
	for _, s := range requested {
		if !oidcScopes[s] {
			return nil, newAPIError("InvalidScopeException", "Invalid scope: "+s)
		}
	}
	return append([]string(nil), requested...), nil
}

// jwtBearerGrant verifies the assertion against the trusted token issuer,
// maps its claim to a user and consumes its jti.
func (a *AWS) jwtBearerGrant(ctx context.Context, assertion string, trust tokenTrust, claim string) (string, *apiError) {
	if assertion == "" {
		return "", newAPIError("InvalidRequestException", "assertion is required for the jwt-bearer grant")
	}
	tok, terr := a.verifyWebToken(ctx, assertion, trust)
	if terr != nil {
		if terr.problem == tokUnreachable {
			return "", newAPIError("InternalServerException", terr.msg)
		}
		return "", newAPIError("InvalidGrantException", terr.msg)
	}
	if tok.jti == "" {
		return "", newAPIError("InvalidGrantException", "The token has no jti claim")
	}
	user, aerr := a.directoryUser(stringClaim(tok.claims, claim))
	if aerr != nil {
		return "", aerr
	}
	if !a.consumeJTI(tok.jti) {
		return "", newAPIError("InvalidGrantException", "The token was already used (its jti was exchanged before)")
	}
	return user, nil
}

// directoryUser maps the value of the token's mapped claim, an email
// address, to an Identity Center user name.
func (a *AWS) directoryUser(email string) (string, *apiError) {
	name, _, ok := strings.Cut(email, "@")
	if !ok || name == "" || a.userRemoved(name) {
		return "", newAPIError("InvalidGrantException", "No Identity Center user matches the token's mapped claim")
	}
	return name, nil
}

// consumeJTI remembers jti for jtiMemory and reports whether it was new.
func (a *AWS) consumeJTI(jti string) bool {
	now := a.clock.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if seen, ok := a.jtis[jti]; ok && now.Sub(seen) < jtiMemory {
		return false
	}
	if len(a.jtis) >= 4096 {
		for k, seen := range a.jtis {
			if now.Sub(seen) >= jtiMemory {
				delete(a.jtis, k)
			}
		}
	}
	a.jtis[jti] = now
	return true
}

// refreshTokenGrant redeems a refresh token once, when the application
// has the refresh grant.
func (a *AWS) refreshTokenGrant(token string, granted bool) (string, *apiError) {
	if !granted {
		return "", newAPIError("UnauthorizedClientException", "The application is not authorized for the refresh_token grant")
	}
	if token == "" {
		return "", newAPIError("InvalidRequestException", "refreshToken is required for the refresh_token grant")
	}
	now := a.clock.Now()
	a.mu.Lock()
	st := a.refresh[token]
	delete(a.refresh, token)
	a.mu.Unlock()
	switch {
	case st == nil:
		return "", newAPIError("InvalidGrantException", "Invalid refresh token")
	case !now.Before(st.expires):
		return "", newAPIError("ExpiredTokenException", "The refresh token has expired")
	case a.userRemoved(st.user):
		return "", newAPIError("InvalidGrantException", "The user of the refresh token no longer exists")
	}
	return st.user, nil
}

// issueTokens answers CreateTokenWithIAM for user, with a refresh token
// when refresh is set.
func (a *AWS) issueTokens(user string, scopes []string, refresh bool) (*createTokenWithIAMOutput, *apiError) {
	now := a.clock.Now()
	identityContext := a.sealContext(user, now)
	idToken, err := a.signIDToken(user, identityContext, now)
	if err != nil {
		return nil, newAPIError("InternalServerException", "")
	}
	out := &createTokenWithIAMOutput{
		AccessToken: randomToken("aoa", 96),
		TokenType:   "Bearer",
		ExpiresIn:   int64(a.tokenTTL / time.Second),
		IDToken:     idToken,
		Scope:       scopes,
	}
	if refresh {
		out.RefreshToken = a.newRefreshToken(user, now)
		out.IssuedTokenType = tokenTypeRefreshToken
	}
	if !a.omitContext {
		out.AWSAdditionalDetails = &awsAdditionalDetails{IdentityContext: identityContext}
	}
	return out, nil
}

// newRefreshToken issues a refresh token of user.
func (a *AWS) newRefreshToken(user string, now time.Time) string {
	token := randomToken("aor", 96)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.refresh[token] = &refreshTokenState{user: user, expires: now.Add(a.refreshTTL)}
	return token
}

// signIDToken returns the idToken of CreateTokenWithIAM, signed with the
// Identity Center key of this AWS.
func (a *AWS) signIDToken(user, identityContext string, now time.Time) (string, error) {
	claims := jwt.MapClaims{
		"iss":                    identityCenterIssuer,
		"sub":                    a.UserID(user),
		"aud":                    a.ApplicationArn(),
		"iat":                    now.Unix(),
		"exp":                    now.Add(a.tokenTTL).Unix(),
		"sts:identity_context":   identityContext,
		"sts:audit_context":      randomToken("", 48),
		"aws:identity_store_id":  a.IdentityStoreID(),
		"aws:identity_store_arn": "arn:aws:identitystore::" + a.account + ":identitystore/" + a.IdentityStoreID(),
		"aws:instance_account":   a.account,
		"aws:instance_arn":       "arn:aws:sso:::instance/" + identityCenterInstance,
		"aws:application_arn":    a.ApplicationArn(),
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	t.Header["kid"] = a.idTokenKid
	return t.SignedString(a.idTokenKey)
}
