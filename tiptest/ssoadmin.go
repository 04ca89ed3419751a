package tiptest

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"regexp"
	"strings"
)

// sso-admin (awsJson1_1) protocol constants.
const (
	ssoAdminTargetPrefix = "SWBExternalService."
	ssoAdminContentType  = "application/x-amz-json-1.1"

	opDescribeApplication        = "DescribeApplication"
	opGetApplicationGrant        = "GetApplicationGrant"
	opDescribeTrustedTokenIssuer = "DescribeTrustedTokenIssuer"

	// customApplicationProvider is the provider of customer managed
	// OAuth 2.0 applications.
	customApplicationProvider = "arn:aws:sso::aws:applicationProvider/custom"
)

// ARN patterns of the sso-admin model.
var (
	applicationArnPattern = regexp.MustCompile(
		`^arn:(aws|aws-us-gov|aws-cn|aws-iso|aws-iso-b):sso::\d{12}:application/(sso)?ins-[a-zA-Z0-9-.]{16}/apl-[a-zA-Z0-9]{16}$`)
	ttiArnPattern = regexp.MustCompile(
		`^arn:(aws|aws-us-gov|aws-cn|aws-iso|aws-iso-b):sso::\d{12}:trustedTokenIssuer/(sso)?ins-[a-zA-Z0-9-.]{16}/tti-[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}$`)
)

// grantTypes are the GrantType values of GetApplicationGrant.
var grantTypes = map[string]bool{
	"authorization_code": true,
	grantRefreshToken:    true,
	grantJWTBearer:       true,
	"urn:ietf:params:oauth:grant-type:token-exchange": true,
}

// ssoAdminStatus is the HTTP status of the sso-admin model's errors and
// of the awsJson front end's.
var ssoAdminStatus = map[string]int{
	"AccessDeniedException":         http.StatusForbidden,
	"ConflictException":             http.StatusConflict,
	"InternalServerException":       http.StatusInternalServerError,
	"ResourceNotFoundException":     http.StatusNotFound,
	"ServiceQuotaExceededException": http.StatusPaymentRequired,
	"ThrottlingException":           http.StatusTooManyRequests,
	"ValidationException":           http.StatusBadRequest,
	"UnknownOperationException":     http.StatusBadRequest,
	"SerializationException":        http.StatusBadRequest,
}

// ssoAdminModeled are the errors of the sso-admin model, whose body member
// is Message; the front end's errors have message.
var ssoAdminModeled = map[string]bool{
	"AccessDeniedException":         true,
	"ConflictException":             true,
	"InternalServerException":       true,
	"ResourceNotFoundException":     true,
	"ServiceQuotaExceededException": true,
	"ThrottlingException":           true,
	"ValidationException":           true,
}

// ssoAdminSigErrors turns a refused signature into the error code of the
// AWS front end of an awsJson service.
var ssoAdminSigErrors = map[sigv4Problem]string{
	sigMissing:      "MissingAuthenticationTokenException",
	sigIncomplete:   "IncompleteSignatureException",
	sigUnknownKey:   "UnrecognizedClientException",
	sigBadToken:     "UnrecognizedClientException",
	sigExpired:      "ExpiredTokenException",
	sigMismatch:     "InvalidSignatureException",
	sigWrongService: "InvalidSignatureException",
	sigWrongRegion:  "InvalidSignatureException",
}

// newSSOAdminError returns an sso-admin error with its modeled status.
func newSSOAdminError(code, msg string) *apiError {
	e := newAPIError(code, msg)
	if status, ok := ssoAdminStatus[code]; ok {
		e.status = status
	}
	return e
}

// ssoAdminInput holds the members of the operations' inputs.
type ssoAdminInput struct {
	ApplicationArn        *string `json:"ApplicationArn"`
	GrantType             *string `json:"GrantType"`
	TrustedTokenIssuerArn *string `json:"TrustedTokenIssuerArn"`
}

// ssoAdminOperations are the sso-admin operations the local AWS serves.
var ssoAdminOperations = map[string]func(a *AWS, caller *principal, in *ssoAdminInput) (any, *apiError){
	opDescribeApplication:        (*AWS).describeApplication,
	opGetApplicationGrant:        (*AWS).getApplicationGrant,
	opDescribeTrustedTokenIssuer: (*AWS).describeTrustedTokenIssuer,
}

// isSSOAdminRequest reports whether r is for sso-admin: it names an
// operation of SWBExternalService in X-Amz-Target.
func isSSOAdminRequest(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("X-Amz-Target"), ssoAdminTargetPrefix)
}

// serveSSOAdmin serves an awsJson1_1 request of sso-admin.
func (a *AWS) serveSSOAdmin(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), ssoAdminTargetPrefix)
	a.record(op, r)
	body, readErr := readBody(w, r)
	if err := a.applyFault(r.Context(), op); err != nil {
		var aerr *apiError
		if errors.As(err, &aerr) {
			writeSSOAdminError(w, newSSOAdminError(aerr.code, aerr.msg))
		}
		return
	}
	out, aerr := a.runSSOAdmin(r, body, readErr, op)
	if aerr != nil {
		writeSSOAdminError(w, aerr)
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		writeSSOAdminError(w, newSSOAdminError("InternalServerException", ""))
		return
	}
	writeBody(w, ssoAdminContentType, http.StatusOK, b)
}

// runSSOAdmin checks the request and its signature and runs op.
func (a *AWS) runSSOAdmin(r *http.Request, body []byte, readErr error, op string) (any, *apiError) {
	handle, known := ssoAdminOperations[op]
	mt, _, mtErr := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/" || !strings.HasPrefix(r.Header.Get("X-Amz-Target"), ssoAdminTargetPrefix):
		return nil, newSSOAdminError("UnknownOperationException", "")
	case !known:
		return nil, newSSOAdminError("UnknownOperationException", "")
	case mtErr != nil || mt != ssoAdminContentType:
		return nil, newSSOAdminError("SerializationException", "Content-Type must be "+ssoAdminContentType)
	case readErr != nil:
		return nil, newSSOAdminError("SerializationException", "The request body could not be read or is too large")
	}
	caller, serr := a.authenticate(a.admVerifier, r, body)
	if serr != nil {
		return nil, newSSOAdminError(ssoAdminSigErrors[serr.problem], serr.msg)
	}
	var in ssoAdminInput
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, newSSOAdminError("SerializationException", "The request body is not valid JSON")
	}
	return handle(a, caller, &in)
}

// writeSSOAdminError answers e in the awsJson1_1 shape.
func writeSSOAdminError(w http.ResponseWriter, e *apiError) {
	member := "message"
	if ssoAdminModeled[e.code] {
		member = "Message"
	}
	b, err := json.Marshal(map[string]string{"__type": e.code, member: e.msg})
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("X-Amzn-ErrorType", e.code)
	writeBody(w, ssoAdminContentType, e.status, b)
}

// ssoAdminValidation is the message of a member that failed a constraint.
func ssoAdminValidation(member, constraint string) *apiError {
	return newSSOAdminError("ValidationException",
		"1 validation error detected: Value at '"+member+"' failed to satisfy constraint: "+constraint)
}

// checkApplicationArn validates the ApplicationArn member.
func checkApplicationArn(v *string) *apiError {
	switch {
	case v == nil:
		return ssoAdminValidation("applicationArn", "Member must not be null")
	case !applicationArnPattern.MatchString(*v):
		return ssoAdminValidation("applicationArn", "Member must satisfy regular expression pattern: "+applicationArnPattern.String())
	}
	return nil
}

// authorize refuses op on resource to a caller the setup denies it.
func (a *AWS) authorize(caller *principal, op, resource string) *apiError {
	if a.denied(caller, "sso:"+op) {
		return newSSOAdminError("AccessDeniedException",
			"User: "+caller.arn+" is not authorized to perform: sso:"+op+" on resource: "+resource)
	}
	return nil
}

// describeApplicationOutput is DescribeApplication's answer.
type describeApplicationOutput struct {
	ApplicationAccount     string        `json:"ApplicationAccount"`
	ApplicationArn         string        `json:"ApplicationArn"`
	ApplicationProviderArn string        `json:"ApplicationProviderArn"`
	CreatedDate            int64         `json:"CreatedDate"`
	Description            string        `json:"Description"`
	InstanceArn            string        `json:"InstanceArn"`
	Name                   string        `json:"Name"`
	PortalOptions          portalOptions `json:"PortalOptions"`
	Status                 string        `json:"Status"`
}

type portalOptions struct {
	Visibility string `json:"Visibility"`
}

// applicationFound returns the ResourceNotFoundException of an
// application that does not exist, or nil.
func (a *AWS) applicationFound(arn string, setup Setup) *apiError {
	if arn != a.ApplicationArn() || !setup.Application {
		return newSSOAdminError("ResourceNotFoundException", "Application "+arn+" not found")
	}
	return nil
}

// describeApplication serves DescribeApplication.
func (a *AWS) describeApplication(caller *principal, in *ssoAdminInput) (any, *apiError) {
	if aerr := checkApplicationArn(in.ApplicationArn); aerr != nil {
		return nil, aerr
	}
	if aerr := a.authorize(caller, opDescribeApplication, *in.ApplicationArn); aerr != nil {
		return nil, aerr
	}
	if aerr := a.applicationFound(*in.ApplicationArn, a.Setup()); aerr != nil {
		return nil, aerr
	}
	return describeApplicationOutput{
		ApplicationAccount:     a.account,
		ApplicationArn:         a.ApplicationArn(),
		ApplicationProviderArn: customApplicationProvider,
		CreatedDate:            a.created.Unix(),
		Description:            "tipkit test application",
		InstanceArn:            a.InstanceArn(),
		Name:                   "tipkit-test",
		PortalOptions:          portalOptions{Visibility: "DISABLED"},
		Status:                 "ENABLED",
	}, nil
}

// The Grant union of GetApplicationGrant's answer.
type (
	getApplicationGrantOutput struct {
		Grant grantUnion `json:"Grant"`
	}
	grantUnion struct {
		JwtBearer    *jwtBearerGrant `json:"JwtBearer,omitempty"`
		RefreshToken *struct{}       `json:"RefreshToken,omitempty"`
	}
	jwtBearerGrant struct {
		AuthorizedTokenIssuers []authorizedTokenIssuer `json:"AuthorizedTokenIssuers"`
	}
	authorizedTokenIssuer struct {
		TrustedTokenIssuerArn string   `json:"TrustedTokenIssuerArn"`
		AuthorizedAudiences   []string `json:"AuthorizedAudiences"`
	}
)

// getApplicationGrant serves GetApplicationGrant for the jwt-bearer and
// refresh_token grants.
func (a *AWS) getApplicationGrant(caller *principal, in *ssoAdminInput) (any, *apiError) {
	if aerr := checkApplicationArn(in.ApplicationArn); aerr != nil {
		return nil, aerr
	}
	switch {
	case in.GrantType == nil:
		return nil, ssoAdminValidation("grantType", "Member must not be null")
	case !grantTypes[*in.GrantType]:
		return nil, ssoAdminValidation("grantType",
			"Member must satisfy enum value set: [authorization_code, refresh_token, urn:ietf:params:oauth:grant-type:jwt-bearer, urn:ietf:params:oauth:grant-type:token-exchange]")
	}
	if aerr := a.authorize(caller, opGetApplicationGrant, *in.ApplicationArn); aerr != nil {
		return nil, aerr
	}
	setup := a.Setup()
	if aerr := a.applicationFound(*in.ApplicationArn, setup); aerr != nil {
		return nil, aerr
	}
	switch {
	case *in.GrantType == grantJWTBearer && setup.JWTBearerGrant:
		return getApplicationGrantOutput{Grant: grantUnion{JwtBearer: &jwtBearerGrant{
			AuthorizedTokenIssuers: []authorizedTokenIssuer{{
				TrustedTokenIssuerArn: a.TrustedTokenIssuerArn(),
				AuthorizedAudiences:   setup.Audiences,
			}},
		}}}, nil
	case *in.GrantType == grantRefreshToken && setup.RefreshGrant:
		return getApplicationGrantOutput{Grant: grantUnion{RefreshToken: &struct{}{}}}, nil
	}
	return nil, newSSOAdminError("ResourceNotFoundException",
		"The application has no grant of type "+*in.GrantType)
}

// The answer of DescribeTrustedTokenIssuer.
type (
	describeTrustedTokenIssuerOutput struct {
		Name                            string    `json:"Name"`
		TrustedTokenIssuerArn           string    `json:"TrustedTokenIssuerArn"`
		TrustedTokenIssuerType          string    `json:"TrustedTokenIssuerType"`
		TrustedTokenIssuerConfiguration ttiConfig `json:"TrustedTokenIssuerConfiguration"`
	}
	ttiConfig struct {
		OidcJwtConfiguration oidcJwtConfiguration `json:"OidcJwtConfiguration"`
	}
	oidcJwtConfiguration struct {
		IssuerURL                  string `json:"IssuerUrl"`
		ClaimAttributePath         string `json:"ClaimAttributePath"`
		IdentityStoreAttributePath string `json:"IdentityStoreAttributePath"`
		JwksRetrievalOption        string `json:"JwksRetrievalOption"`
	}
)

// describeTrustedTokenIssuer serves DescribeTrustedTokenIssuer.
func (a *AWS) describeTrustedTokenIssuer(caller *principal, in *ssoAdminInput) (any, *apiError) {
	switch {
	case in.TrustedTokenIssuerArn == nil:
		return nil, ssoAdminValidation("trustedTokenIssuerArn", "Member must not be null")
	case !ttiArnPattern.MatchString(*in.TrustedTokenIssuerArn):
		return nil, ssoAdminValidation("trustedTokenIssuerArn", "Member must satisfy regular expression pattern: "+ttiArnPattern.String())
	}
	if aerr := a.authorize(caller, opDescribeTrustedTokenIssuer, *in.TrustedTokenIssuerArn); aerr != nil {
		return nil, aerr
	}
	if *in.TrustedTokenIssuerArn != a.TrustedTokenIssuerArn() {
		return nil, newSSOAdminError("ResourceNotFoundException", "Trusted token issuer "+*in.TrustedTokenIssuerArn+" not found")
	}
	setup := a.Setup()
	return describeTrustedTokenIssuerOutput{
		Name:                   ttiName,
		TrustedTokenIssuerArn:  a.TrustedTokenIssuerArn(),
		TrustedTokenIssuerType: "OIDC_JWT",
		TrustedTokenIssuerConfiguration: ttiConfig{OidcJwtConfiguration: oidcJwtConfiguration{
			IssuerURL:                  setup.IssuerURL,
			ClaimAttributePath:         setup.ClaimAttributePath,
			IdentityStoreAttributePath: identityStoreAttribute,
			JwksRetrievalOption:        "OPEN_ID_DISCOVERY",
		}},
	}, nil
}
