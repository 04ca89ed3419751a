package tiptest

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// STS limits.
const (
	stsVersion             = "2011-06-15"
	stsMinDuration         = 900
	stsMaxDuration         = 43200
	stsDefaultDuration     = 3600
	stsChainingMaxDuration = 3600
	stsMaxContexts         = 5
	stsMinAssertion        = 4
	stsMaxAssertion        = 2048
	stsMinWebToken         = 4
	stsMaxWebToken         = 20000
)

// sessionNamePattern is the constraint on RoleSessionName.
var sessionNamePattern = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)

// stsCall is one STS request being served.
type stsCall struct {
	r      *http.Request
	form   url.Values
	caller *principal // nil for unsigned operations
}

// stsOperation is an STS action and whether it must be signed.
type stsOperation struct {
	signed bool
	handle func(a *AWS, c *stsCall) (any, *apiError)
}

// stsOperations are the STS actions the local AWS serves.
var stsOperations = map[string]stsOperation{
	opAssumeRoleWithWebIdentity: {signed: false, handle: (*AWS).assumeRoleWithWebIdentity},
	opAssumeRole:                {signed: true, handle: (*AWS).assumeRole},
	opGetCallerIdentity:         {signed: true, handle: (*AWS).getCallerIdentity},
}

// stsSigErrors turns a refused signature into an STS error code.
var stsSigErrors = map[sigv4Problem]string{
	sigMissing:      "MissingAuthenticationToken",
	sigIncomplete:   "IncompleteSignature",
	sigUnknownKey:   "InvalidClientTokenId",
	sigBadToken:     "InvalidClientTokenId",
	sigExpired:      "ExpiredToken",
	sigMismatch:     "SignatureDoesNotMatch",
	sigWrongService: "SignatureDoesNotMatch",
	sigWrongRegion:  "SignatureDoesNotMatch",
}

// serveSTS serves an awsQuery request.
func (a *AWS) serveSTS(w http.ResponseWriter, r *http.Request, requestID string) {
	form, body, aerr := readQueryForm(w, r, "STS")
	if aerr != nil {
		writeSTSError(w, requestID, aerr)
		return
	}
	op := form.Get("Action")
	a.record(op, r)
	if err := a.applyFault(r.Context(), op); err != nil {
		if errors.As(err, &aerr) {
			writeSTSError(w, requestID, aerr)
		}
		return
	}
	result, aerr := a.runSTS(r, form, body, op)
	if aerr != nil {
		writeSTSError(w, requestID, aerr)
		return
	}
	writeSTSResult(w, op, requestID, result)
}

// readQueryForm reads the form body of an awsQuery request to service
// ("STS", "IAM").
func readQueryForm(w http.ResponseWriter, r *http.Request, service string) (url.Values, []byte, *apiError) {
	if r.Method != http.MethodPost {
		return nil, nil, newAPIError("InvalidAction", service+" is served with POST only")
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, nil, newAPIError("InvalidAction", "Content-Type must be application/x-www-form-urlencoded")
	}
	body, err := readBody(w, r)
	if err != nil {
		return nil, nil, newAPIError("ValidationError", "The request body could not be read or is too large")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, nil, newAPIError("MalformedQueryString", "The request body is not a valid form")
	}
	return form, body, nil
}

// runSTS checks the version and the signature and runs op.
func (a *AWS) runSTS(r *http.Request, form url.Values, body []byte, op string) (any, *apiError) {
	if op == "" {
		return nil, newAPIError("MissingAction", "Missing Action")
	}
	operation, ok := stsOperations[op]
	if !ok || form.Get("Version") != stsVersion {
		return nil, newAPIError("InvalidAction",
			fmt.Sprintf("Could not find operation %s for version %s", op, form.Get("Version")))
	}
	c := &stsCall{r: r, form: form}
	if operation.signed {
		caller, serr := a.authenticate(a.stsVerifier, r, body)
		if serr != nil {
			return nil, newAPIError(stsSigErrors[serr.problem], serr.msg)
		}
		c.caller = caller
	}
	return operation.handle(a, c)
}

// authenticate verifies the signature of r and returns the principal that
// signed it.
func (a *AWS) authenticate(v *sigv4Verifier, r *http.Request, body []byte) (*principal, *sigv4Error) {
	accessKeyID, err := v.verify(r, body)
	if err != nil {
		return nil, err
	}
	p := a.principal(accessKeyID)
	if p == nil {
		return nil, sigFail(sigUnknownKey, "The security token included in the request is invalid.")
	}
	return p, nil
}

// stsCredentials is the Credentials element of an STS answer.
type stsCredentials struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

// stsAssumedRoleUser is the AssumedRoleUser element of an STS answer.
type stsAssumedRoleUser struct {
	AssumedRoleID string `xml:"AssumedRoleId"`
	Arn           string `xml:"Arn"`
}

type assumeRoleResult struct {
	Credentials     stsCredentials     `xml:"Credentials"`
	AssumedRoleUser stsAssumedRoleUser `xml:"AssumedRoleUser"`
	SourceIdentity  string             `xml:"SourceIdentity,omitempty"`
}

type assumeRoleWithWebIdentityResult struct {
	Credentials                 stsCredentials     `xml:"Credentials"`
	SubjectFromWebIdentityToken string             `xml:"SubjectFromWebIdentityToken"`
	AssumedRoleUser             stsAssumedRoleUser `xml:"AssumedRoleUser"`
	PackedPolicySize            *int               `xml:"PackedPolicySize,omitempty"`
	Provider                    string             `xml:"Provider"`
	Audience                    string             `xml:"Audience"`
	SourceIdentity              string             `xml:"SourceIdentity,omitempty"`
}

type getCallerIdentityResult struct {
	UserID  string `xml:"UserId"`
	Account string `xml:"Account"`
	Arn     string `xml:"Arn"`
}

// sessionResult returns the credentials and assumed-role user of p.
func sessionResult(p *principal) (stsCredentials, stsAssumedRoleUser) {
	return stsCredentials{
			AccessKeyID:     p.accessKeyID,
			SecretAccessKey: p.secret,
			SessionToken:    p.token,
			Expiration:      p.expires.UTC().Format(time.RFC3339),
		}, stsAssumedRoleUser{
			AssumedRoleID: p.userID,
			Arn:           p.arn,
		}
}

// writeSTSResult answers <OpResponse><OpResult>result</OpResult>
// <ResponseMetadata>...</ResponseMetadata></OpResponse>.
func writeSTSResult(w http.ResponseWriter, op, requestID string, result any) {
	writeQueryResult(w, stsNamespace, op, requestID, result)
}

// writeQueryResult answers an awsQuery result in the XML namespace of the
// service.
func writeQueryResult(w http.ResponseWriter, namespace, op, requestID string, result any) {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, `<%sResponse xmlns="%s">`, op, namespace)
	enc := xml.NewEncoder(&buf)
	err := enc.EncodeElement(result, xml.StartElement{Name: xml.Name{Local: op + "Result"}})
	if err == nil {
		err = enc.EncodeElement(struct {
			RequestID string `xml:"RequestId"`
		}{requestID}, xml.StartElement{Name: xml.Name{Local: "ResponseMetadata"}})
	}
	if err != nil {
		writeQueryError(w, namespace, requestID, newAPIError("InternalFailure", ""))
		return
	}
	fmt.Fprintf(&buf, `</%sResponse>`, op)
	writeBody(w, "text/xml", http.StatusOK, buf.Bytes())
}

// requireParams refuses a call that lacks one of names.
func (c *stsCall) requireParams(names ...string) *apiError {
	for _, n := range names {
		if c.form.Get(n) == "" {
			return newAPIError("MissingParameter", "The request must contain the parameter "+n)
		}
	}
	return nil
}

// validationError is STS's message for a constraint that failed.
func validationError(value, member, constraint string) *apiError {
	return newAPIError("ValidationError", fmt.Sprintf(
		"1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: %s", value, member, constraint))
}

// sessionName returns the validated RoleSessionName.
func (c *stsCall) sessionName() (string, *apiError) {
	name := c.form.Get("RoleSessionName")
	if !sessionNamePattern.MatchString(name) {
		return "", validationError(name, "roleSessionName",
			`Member must have length between 2 and 64 and satisfy regular expression pattern: [\w+=,.@-]*`)
	}
	return name, nil
}

// duration returns the validated DurationSeconds (3600 when absent) for a
// role of maximum session maxSession; a chained session is capped at one
// hour.
func (c *stsCall) duration(maxSession int, chained bool) (time.Duration, *apiError) {
	raw := c.form.Get("DurationSeconds")
	seconds := stsDefaultDuration
	if raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil {
			return 0, validationError(raw, "durationSeconds", "Member must be an integer")
		}
		seconds = n
	}
	switch {
	case seconds < stsMinDuration:
		return 0, validationError(raw, "durationSeconds", "Member must have value greater than or equal to 900")
	case seconds > stsMaxDuration:
		return 0, validationError(raw, "durationSeconds", "Member must have value less than or equal to 43200")
	case chained && seconds > stsChainingMaxDuration:
		return 0, newAPIError("ValidationError",
			"The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.")
	case seconds > maxSession:
		return 0, newAPIError("ValidationError",
			"The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
	}
	return time.Duration(seconds) * time.Second, nil
}

// hasParamPrefix reports whether the call holds a parameter starting with
// prefix.
func (c *stsCall) hasParamPrefix(prefix string) bool {
	for k := range c.form {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// assumeRoleWithWebIdentity serves the unsigned AssumeRoleWithWebIdentity.
// The session carries the tags, transitive tag keys and source identity
// that the token's claims pass (see webIdentityShape), which need
// sts:TagSession and sts:SetSourceIdentity in the application role's
// trust policy (Setup.ApplicationRoleTagSession,
// Setup.ApplicationRoleSetSourceIdentity), and the call's session
// policies.
func (a *AWS) assumeRoleWithWebIdentity(c *stsCall) (any, *apiError) {
	if aerr := c.requireParams("RoleArn", "RoleSessionName", "WebIdentityToken"); aerr != nil {
		return nil, aerr
	}
	if c.hasParamPrefix("ProvidedContexts.") {
		return nil, newAPIError("ValidationError", "ProvidedContexts is not supported by AssumeRoleWithWebIdentity")
	}
	session, aerr := c.sessionName()
	if aerr != nil {
		return nil, aerr
	}
	d, aerr := c.duration(a.appRole.maxSession, false)
	if aerr != nil {
		return nil, aerr
	}
	raw := c.form.Get("WebIdentityToken")
	if len(raw) < stsMinWebToken || len(raw) > stsMaxWebToken {
		return nil, validationError("***", "webIdentityToken", "Member must have length between 4 and 20000")
	}
	tok, terr := a.verifyWebToken(c.r.Context(), raw, a.provider)
	if terr != nil {
		return nil, stsTokenError(terr)
	}
	if tok.subject == "" {
		return nil, newAPIError("InvalidIdentityToken", "The token has no sub claim")
	}
	if c.form.Get("RoleArn") != a.ApplicationRoleArn() {
		return nil, newAPIError("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
	}
	shape, aerr := webIdentityShape(tok.claims)
	if aerr != nil {
		return nil, aerr
	}
	if aerr := shape.readPolicies(c); aerr != nil {
		return nil, aerr
	}
	setup := a.Setup()
	for _, need := range []struct {
		action  string
		asked   bool
		allowed bool
	}{
		{"sts:TagSession", len(shape.tags) > 0, setup.ApplicationRoleTagSession},
		{"sts:SetSourceIdentity", shape.sourceIdentity != "", setup.ApplicationRoleSetSourceIdentity},
	} {
		if need.asked && !need.allowed {
			return nil, newAPIError("AccessDenied", "Not authorized to perform "+need.action)
		}
	}
	p := a.issueShaped(a.appRole, session, d, "", shape)
	creds, user := sessionResult(p)
	out := assumeRoleWithWebIdentityResult{
		Credentials:                 creds,
		SubjectFromWebIdentityToken: tok.subject,
		AssumedRoleUser:             user,
		Provider:                    a.provider.issuer,
		Audience:                    tok.audience,
		SourceIdentity:              shape.sourceIdentity,
	}
	if shape.passed() {
		packed := shape.packedPercent()
		out.PackedPolicySize = &packed
	}
	return out, nil
}

// stsTokenError turns a refused web identity token into STS's error.
func stsTokenError(e *tokenError) *apiError {
	switch e.problem {
	case tokExpired:
		return newAPIError("ExpiredTokenException", e.msg)
	case tokUnreachable:
		return newAPIError("IDPCommunicationError", "The request could not be fulfilled because the identity provider "+
			"(IDP) that was asked to verify the incoming identity token could not be reached.")
	}
	return newAPIError("InvalidIdentityToken", e.msg)
}

// assumeRole serves AssumeRole, with at most one Identity Center context,
// and the session tags, source identity and session policies of the
// session (see sessionShape): tags need sts:TagSession in the access
// role's trust policy, a source identity sts:SetSourceIdentity
// (Setup.AccessRoleTagSession, Setup.AccessRoleSetSourceIdentity).
func (a *AWS) assumeRole(c *stsCall) (any, *apiError) {
	if aerr := c.requireParams("RoleArn", "RoleSessionName"); aerr != nil {
		return nil, aerr
	}
	session, aerr := c.sessionName()
	if aerr != nil {
		return nil, aerr
	}
	d, aerr := c.duration(a.accessRole.maxSession, c.caller.role != "")
	if aerr != nil {
		return nil, aerr
	}
	contexts, aerr := c.providedContexts()
	if aerr != nil {
		return nil, aerr
	}
	shape, aerr := c.sessionShape()
	if aerr != nil {
		return nil, aerr
	}
	roleArn := c.form.Get("RoleArn")
	setup := a.Setup()
	if roleArn != a.AccessRoleArn() || !setup.AccessRole || !a.mayUseApplication(c.caller) {
		return nil, newAPIError("AccessDenied", fmt.Sprintf(
			"User: %s is not authorized to perform: sts:AssumeRole on resource: %s", c.caller.arn, roleArn))
	}
	if len(contexts) > 0 && !setup.AccessRoleSetContext {
		return nil, newAPIError("AccessDenied", fmt.Sprintf(
			"User: %s is not authorized to perform: sts:SetContext on resource: %s", c.caller.arn, roleArn))
	}
	for _, need := range []struct {
		action  string
		asked   bool
		allowed bool
	}{
		{"sts:TagSession", c.tagged(), setup.AccessRoleTagSession},
		{"sts:SetSourceIdentity", c.form.Has("SourceIdentity"), setup.AccessRoleSetSourceIdentity},
	} {
		if need.asked && !need.allowed {
			return nil, newAPIError("AccessDenied", fmt.Sprintf(
				"User: %s is not authorized to perform: %s on resource: %s", c.caller.arn, need.action, roleArn))
		}
	}
	user, aerr := a.contextUser(contexts)
	if aerr != nil {
		return nil, aerr
	}
	p := a.issueShaped(a.accessRole, session, d, user, shape)
	creds, assumed := sessionResult(p)
	return assumeRoleResult{Credentials: creds, AssumedRoleUser: assumed, SourceIdentity: shape.sourceIdentity}, nil
}

// providedContext is one member of ProvidedContexts.
type providedContext struct {
	providerArn string
	assertion   string
}

// providedContexts returns ProvidedContexts.member.N (N = 1, 2, ...),
// refusing unknown members and gaps in the numbering.
func (c *stsCall) providedContexts() ([]providedContext, *apiError) {
	const prefix = "ProvidedContexts.member."
	byIndex := map[int]*providedContext{}
	for key := range c.form {
		rest, ok := strings.CutPrefix(key, prefix)
		if !ok {
			continue
		}
		index, field, _ := strings.Cut(rest, ".")
		n, err := strconv.Atoi(index)
		if err != nil || n < 1 || n > stsMaxContexts+1 || (field != "ProviderArn" && field != "ContextAssertion") {
			return nil, validationError(key, "providedContexts", "Member must have length less than or equal to 5")
		}
		if byIndex[n] == nil {
			byIndex[n] = &providedContext{}
		}
		if field == "ProviderArn" {
			byIndex[n].providerArn = c.form.Get(key)
		} else {
			byIndex[n].assertion = c.form.Get(key)
		}
	}
	out := make([]providedContext, 0, len(byIndex))
	for n := 1; n <= len(byIndex); n++ {
		pc := byIndex[n]
		if pc == nil {
			return nil, newAPIError("ValidationError", "ProvidedContexts members must be numbered from 1 without gaps")
		}
		out = append(out, *pc)
	}
	if len(out) > stsMaxContexts {
		return nil, validationError(strconv.Itoa(len(out)), "providedContexts", "Member must have length less than or equal to 5")
	}
	return out, nil
}

// contextUser checks the provided contexts and returns the Identity Center
// user of the identity context, or "" when there is none.
func (a *AWS) contextUser(contexts []providedContext) (string, *apiError) {
	user := ""
	for _, pc := range contexts {
		if pc.providerArn != identityCenterProvider {
			return "", validationError(pc.providerArn, "providedContexts.member.providerArn",
				"Member must be a supported context provider")
		}
		if user != "" {
			return "", newAPIError("ValidationError", "Only one identity context may be provided")
		}
		if len(pc.assertion) < stsMinAssertion || len(pc.assertion) > stsMaxAssertion {
			return "", validationError("***", "providedContexts.member.contextAssertion",
				"Member must have length between 4 and 2048")
		}
		ic, aerr := a.openContext(pc.assertion)
		if aerr != nil {
			return "", aerr
		}
		user = ic.User
	}
	return user, nil
}

// getCallerIdentity serves GetCallerIdentity.
func (a *AWS) getCallerIdentity(c *stsCall) (any, *apiError) {
	return getCallerIdentityResult{UserID: c.caller.userID, Account: a.account, Arn: c.caller.arn}, nil
}
