package tiptest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"time"
)

// IAM (awsQuery) protocol constants.
const (
	iamVersion   = "2010-05-08"
	iamNamespace = "https://iam.amazonaws.com/doc/2010-05-08/"
	opGetRole    = "GetRole"
)

// roleNamePattern is the constraint on GetRole's RoleName.
var roleNamePattern = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)

// iamRole is the Role element of GetRole's answer.
type iamRole struct {
	Path                     string `xml:"Path"`
	RoleName                 string `xml:"RoleName"`
	RoleID                   string `xml:"RoleId"`
	Arn                      string `xml:"Arn"`
	CreateDate               string `xml:"CreateDate"`
	AssumeRolePolicyDocument string `xml:"AssumeRolePolicyDocument"`
	Description              string `xml:"Description"`
	MaxSessionDuration       int    `xml:"MaxSessionDuration"`
}

type getRoleResult struct {
	Role iamRole `xml:"Role"`
}

// isIAMRequest reports whether r, a POST to "/", is an awsQuery request
// of IAM's API version. It reads the body and puts it back for the
// handler (with the read error, if any).
func isIAMRequest(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		return false
	}
	body, err := readBody(w, r)
	r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{err}))
	if err != nil {
		return false
	}
	form, err := url.ParseQuery(string(body))
	return err == nil && form.Get("Version") == iamVersion
}

// errReader returns err, or io.EOF when err is nil.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	return 0, io.EOF
}

// serveIAM serves IAM's awsQuery requests: GetRole.
func (a *AWS) serveIAM(w http.ResponseWriter, r *http.Request, requestID string) {
	form, body, aerr := readQueryForm(w, r, "IAM")
	if aerr != nil {
		writeQueryError(w, iamNamespace, requestID, aerr)
		return
	}
	op := form.Get("Action")
	a.record(op, r)
	if err := a.applyFault(r.Context(), op); err != nil {
		if errors.As(err, &aerr) {
			writeQueryError(w, iamNamespace, requestID, aerr)
		}
		return
	}
	result, aerr := a.runIAM(r, form, body, op)
	if aerr != nil {
		writeQueryError(w, iamNamespace, requestID, aerr)
		return
	}
	writeQueryResult(w, iamNamespace, op, requestID, result)
}

// runIAM checks the action, the version and the signature, and runs op.
func (a *AWS) runIAM(r *http.Request, form url.Values, body []byte, op string) (any, *apiError) {
	switch {
	case op == "":
		return nil, newAPIError("MissingAction", "Missing Action")
	case op != opGetRole || form.Get("Version") != iamVersion:
		return nil, newAPIError("InvalidAction",
			fmt.Sprintf("Could not find operation %s for version %s", op, form.Get("Version")))
	}
	caller, serr := a.authenticate(a.iamVerifier, r, body)
	if serr != nil {
		return nil, newAPIError(stsSigErrors[serr.problem], serr.msg)
	}
	return a.getRole(caller, form.Get("RoleName"))
}

// getRole describes the access role or the application role, with its
// trust policy URL-encoded as IAM returns it.
func (a *AWS) getRole(caller *principal, name string) (any, *apiError) {
	if !roleNamePattern.MatchString(name) {
		return nil, validationError(name, "roleName",
			`Member must have length between 1 and 64 and satisfy regular expression pattern: [\w+=,.@-]+`)
	}
	if a.denied(caller, "iam:GetRole") {
		return nil, newAPIError("AccessDenied", fmt.Sprintf(
			"User: %s is not authorized to perform: iam:GetRole on resource: role %s because no identity-based policy allows the iam:GetRole action",
			caller.arn, name))
	}
	setup := a.Setup()
	var role roleModel
	var trust, description string
	switch {
	case name == accessRoleName && setup.AccessRole:
		role, trust = a.accessRole, a.accessRoleTrust(setup)
		description = "Assumed with each user's identity context"
	case name == applicationRoleName:
		role, trust = a.appRole, a.applicationRoleTrust(setup)
		description = "Assumed with a user's token to sign the exchange"
	default:
		return nil, newAPIError("NoSuchEntity", "The role with name "+name+" cannot be found.")
	}
	return getRoleResult{Role: iamRole{
		Path:                     "/",
		RoleName:                 role.name,
		RoleID:                   role.id,
		Arn:                      a.arn("iam", "role/"+role.name),
		CreateDate:               a.created.UTC().Format(time.RFC3339),
		AssumeRolePolicyDocument: sigv4Escape(trust),
		Description:              description,
		MaxSessionDuration:       role.maxSession,
	}}, nil
}
