package tiptest

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/xml"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// S3 Control and S3 Access Grants.
const (
	opGetDataAccess          = "GetDataAccess"
	opListCallerAccessGrants = "ListCallerAccessGrants"
	// s3ControlNamespace is the XML namespace of S3 Control answers.
	s3ControlNamespace = "http://awss3control.amazonaws.com/doc/2018-08-20/"
	// s3ControlDataAccessPath is the path of GetDataAccess.
	s3ControlDataAccessPath = "/v20180820/accessgrantsinstance/dataaccess"
	// s3ControlCallerGrantsPath is the path of ListCallerAccessGrants.
	s3ControlCallerGrantsPath = "/v20180820/accessgrantsinstance/caller/grants"
	// callerGrantsMaxResults is the most grants, and the default number,
	// one page of ListCallerAccessGrants holds.
	callerGrantsMaxResults = 1000
	// s3ControlPathPrefix starts the path of every S3 Control operation.
	s3ControlPathPrefix = "/v20180820/"
	// locationRoleName is the IAM role registered with the S3 Access
	// Grants location: GetDataAccess vends sessions of it.
	locationRoleName = "tipkit-access-grants-location"
	// s3MaxTarget is the longest Target of GetDataAccess.
	s3MaxTarget = 2000
	// s3MaxAuditContext bounds the auditContext of GetDataAccess.
	s3MaxAuditContext = 2048
	// dataAccessDefaultDuration, dataAccessMinDuration and
	// dataAccessMaxDuration bound DurationSeconds of GetDataAccess.
	dataAccessDefaultDuration = 3600
	dataAccessMinDuration     = 900
	dataAccessMaxDuration     = 43200
	// dialTimeout and dialKeepAlive are those of the SDK's default dialer.
	dialTimeout   = 30 * time.Second
	dialKeepAlive = 30 * time.Second
)

// dataScope is what credentials vended by GetDataAccess reach: with exact,
// the one object key; else the keys of bucket that start with prefix.
type dataScope struct {
	bucket string
	prefix string
	exact  bool
	access Access
}

// covers reports whether the scope allows need on key (or, for a listing,
// on the keys under the prefix key).
func (sc dataScope) covers(bucket, key string, need Access, listing bool) bool {
	if sc.bucket != bucket || sc.access&need != need {
		return false
	}
	if sc.exact {
		return !listing && key == sc.prefix
	}
	return strings.HasPrefix(key, sc.prefix)
}

// HTTPClient returns an HTTP client for the SDK clients of the local AWS
// (aws.Config.HTTPClient; Env.Config sets it). It connects as the SDK's
// default client does, and also resolves the names the S3 Control client
// builds from BaseEndpoint: the account id in front of the host
// ("123456789012.127.0.0.1:PORT"), as AWS's DNS resolves
// "123456789012.s3-control.us-east-1.amazonaws.com". Without it, the
// unmodified s3control client cannot reach the local AWS.
func (a *AWS) HTTPClient() *awshttp.BuildableClient {
	u, _ := url.Parse(a.srv.URL) // httptest's URL always parses
	local := u.Host
	localHost := u.Hostname()
	port := u.Port()
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: dialKeepAlive}
	return awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if host, p, err := net.SplitHostPort(addr); err == nil && p == port {
				if label, ok := strings.CutSuffix(host, "."+localHost); ok && isHostLabel(label) {
					addr = local
				}
			}
			return dialer.DialContext(ctx, network, addr)
		}
	})
}

// isHostLabel reports whether s is one DNS label: 1 to 63 letters, digits
// and hyphens.
func isHostLabel(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// hostLabel returns the label in front of the local AWS's host in the Host
// of r ("123456789012" of "123456789012.127.0.0.1:PORT"), or "".
func (a *AWS) hostLabel(r *http.Request) string {
	u, _ := url.Parse(a.srv.URL)
	label, ok := strings.CutSuffix(r.Host, "."+u.Host)
	if !ok || !isHostLabel(label) {
		return ""
	}
	return label
}

// isS3ControlRequest reports whether r, a request of the service "s3", is
// for S3 Control: addressed to an account's S3 Control host
// ("{AccountId}.127.0.0.1:PORT") rather than to S3.
func (a *AWS) isS3ControlRequest(r *http.Request) bool {
	return accountPattern.MatchString(a.hostLabel(r)) && strings.HasPrefix(r.URL.Path, s3ControlPathPrefix)
}

// serveS3Control serves a restXml S3 Control request: GetDataAccess and
// ListCallerAccessGrants.
func (a *AWS) serveS3Control(w http.ResponseWriter, r *http.Request) {
	requestID := strings.ToUpper(hex.EncodeToString(randomBytes(8)))
	w.Header().Set("X-Amz-Request-Id", requestID)
	w.Header().Set("X-Amz-Id-2", randomToken("", 48))
	op := "S3Control " + r.Method + " " + r.URL.Path
	switch {
	case r.Method == http.MethodGet && r.URL.Path == s3ControlDataAccessPath:
		op = opGetDataAccess
	case r.Method == http.MethodGet && r.URL.Path == s3ControlCallerGrantsPath:
		op = opListCallerAccessGrants
	}
	a.record(op, r)
	body, err := readBody(w, r)
	if ferr := a.applyFault(r.Context(), op); ferr != nil {
		if aerr, ok := ferr.(*apiError); ok {
			writeS3ControlError(w, requestID, s3FaultError(aerr))
		}
		return
	}
	if err != nil {
		writeS3ControlError(w, requestID, s3Err("IncompleteBody", "The request body could not be read or is too large."))
		return
	}
	caller, aerr := a.s3Authenticate(r, body)
	if aerr != nil {
		writeS3ControlError(w, requestID, aerr)
		return
	}
	var result any
	switch op {
	case opGetDataAccess:
		result, aerr = a.getDataAccess(r, caller)
	case opListCallerAccessGrants:
		result, aerr = a.listCallerAccessGrants(r, caller)
	default:
		aerr = s3Err("NotImplemented", "A header or query you provided implies functionality that is not implemented: "+
			r.Method+" "+r.URL.Path+" is not served by the local S3 Control.")
	}
	if aerr != nil {
		writeS3ControlError(w, requestID, aerr)
		return
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(result); err != nil {
		writeS3ControlError(w, requestID, s3Err("InternalError", ""))
		return
	}
	writeBody(w, "application/xml", http.StatusOK, buf.Bytes())
}

// getDataAccessResult is the answer of GetDataAccess.
type getDataAccessResult struct {
	XMLName            xml.Name       `xml:"GetDataAccessResult"`
	Xmlns              string         `xml:"xmlns,attr"`
	Credentials        stsCredentials `xml:"Credentials"`
	MatchedGrantTarget string         `xml:"MatchedGrantTarget"`
	Grantee            dataGrantee    `xml:"Grantee"`
}

// dataGrantee is the Grantee of a GetDataAccess answer.
type dataGrantee struct {
	GranteeType       string `xml:"GranteeType"`
	GranteeIdentifier string `xml:"GranteeIdentifier"`
}

// dataAccessParams are the validated parameters of GetDataAccess.
type dataAccessParams struct {
	bucket   string
	path     string // the key, or the prefix (without its "*")
	object   bool   // targetType=Object
	minimal  bool   // privilege=Minimal
	access   Access // permission
	duration time.Duration
}

// checkAccount checks the account of an S3 Access Grants request: the
// x-amz-account-id header, which must name the account of the endpoint
// host, and this AWS's account, where the instance is.
func (a *AWS) checkAccount(r *http.Request) *apiError {
	account := r.Header.Get("X-Amz-Account-Id")
	switch {
	case account == "":
		return s3Err("InvalidRequest", "Missing required header for this request: x-amz-account-id")
	case account != a.hostLabel(r):
		return s3Err("InvalidRequest", "The x-amz-account-id header does not match the account of the endpoint host.")
	case account != a.account:
		return s3Err("AccessDenied", "You do not have access to the S3 Access Grants instance of account "+account+".")
	}
	return nil
}

// parseDataAccess validates the account and query of a GetDataAccess.
func (a *AWS) parseDataAccess(r *http.Request) (*dataAccessParams, *apiError) {
	if aerr := a.checkAccount(r); aerr != nil {
		return nil, aerr
	}
	q := r.URL.Query()
	p := &dataAccessParams{duration: dataAccessDefaultDuration * time.Second}
	switch perm := q.Get("permission"); perm {
	case "READ":
		p.access = AccessRead
	case "WRITE":
		p.access = AccessWrite
	case "READWRITE":
		p.access = AccessReadWrite
	case "":
		return nil, s3Err("InvalidRequest", "Missing required parameter: permission")
	default:
		return nil, s3Err("InvalidRequest", "Invalid permission '"+perm+"': must be READ, WRITE or READWRITE")
	}
	switch priv := q.Get("privilege"); priv {
	case "", "Default":
	case "Minimal":
		p.minimal = true
	default:
		return nil, s3Err("InvalidRequest", "Invalid privilege '"+priv+"': must be Default or Minimal")
	}
	switch tt := q.Get("targetType"); tt {
	case "":
	case "Object":
		p.object = true
	default:
		return nil, s3Err("InvalidRequest", "Invalid targetType '"+tt+"': must be Object")
	}
	if raw := q.Get("durationSeconds"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < dataAccessMinDuration || n > dataAccessMaxDuration {
			return nil, s3Err("InvalidRequest", "Invalid durationSeconds '"+raw+"': must be between 900 and 43200")
		}
		p.duration = time.Duration(n) * time.Second
	}
	if len(q.Get("auditContext")) > s3MaxAuditContext {
		return nil, s3Err("InvalidRequest", "auditContext is too long")
	}
	if q.Has("instanceScope") && q.Get("instanceScope") != "OWN" {
		return nil, s3Err("NotImplemented", "instanceScope other than OWN is not implemented by the local S3 Control.")
	}
	aerr := p.setTarget(q.Get("target"))
	return p, aerr
}

// setTarget parses the target: "s3://bucket/prefix*" (or "s3://bucket/*",
// "s3://bucket/prefix") for a prefix, "s3://bucket/key" with
// targetType=Object for an object.
func (p *dataAccessParams) setTarget(target string) *apiError {
	if target == "" {
		return s3Err("InvalidRequest", "Missing required parameter: target")
	}
	invalid := s3Err("InvalidRequest", "Invalid target '"+target+"': must be an S3 URI such as s3://bucket/prefix/*")
	rest, ok := strings.CutPrefix(target, "s3://")
	if !ok || len(target) > s3MaxTarget {
		return invalid
	}
	bucket, path, _ := strings.Cut(rest, "/")
	if checkBucketName(bucket) != nil {
		return invalid
	}
	if p.object {
		if path == "" || strings.HasSuffix(path, "*") || checkKey(path) != nil {
			return invalid
		}
	} else {
		path = strings.TrimSuffix(path, "*")
		if strings.Contains(path, "*") {
			return invalid
		}
	}
	p.bucket, p.path = bucket, path
	return nil
}

// getDataAccess serves GetDataAccess: only an identity-enhanced session of
// the access role is vended credentials, for the closest grant of its
// Identity Center user (or of the user's groups) that covers the target
// with the permission asked for.
func (a *AWS) getDataAccess(r *http.Request, caller *principal) (any, *apiError) {
	p, aerr := a.parseDataAccess(r)
	if aerr != nil {
		return nil, aerr
	}
	if caller.role != accessRoleName || caller.user == "" {
		return nil, s3Err("AccessDenied", "User: "+caller.arn+" is not authorized to perform: s3:GetDataAccess on resource: "+
			a.accessGrantsInstanceArn()+" because no S3 access grant of the caller, and no identity context of a directory user, matches the request")
	}
	if sessionDenies(caller, "s3:GetDataAccess") {
		return nil, s3Err("AccessDenied", "User: "+caller.arn+" is not authorized to perform: s3:GetDataAccess on resource: "+
			a.accessGrantsInstanceArn()+" because no session policy allows the s3:GetDataAccess action")
	}
	userID := a.UserID(caller.user)
	g, ok := a.s3.matchGrant(userID, p.bucket, p.path, p.access)
	if !ok {
		return nil, s3Err("AccessDenied", "You do not have "+p.access.String()+" access to the requested S3 location "+r.URL.Query().Get("target")+
			": no S3 access grant of Identity Center user "+userID+" (or of the user's groups) matches it.")
	}
	scope := dataScope{bucket: g.bucket, prefix: g.prefix, access: p.access}
	if p.minimal {
		scope.prefix, scope.exact = p.path, p.object
	}
	creds := a.issueCredentials(a.s3.locationRole, "access-grants-"+randomID(12), p.duration, caller.user)
	a.s3.setScope(creds.accessKeyID, scope)
	res, _ := sessionResult(creds)
	grantee := dataGrantee{GranteeType: "DIRECTORY_USER", GranteeIdentifier: userID}
	if g.group {
		grantee = dataGrantee{GranteeType: "DIRECTORY_GROUP", GranteeIdentifier: a.groupID(g.grantee)}
	}
	return getDataAccessResult{
		Xmlns:              s3ControlNamespace,
		Credentials:        res,
		MatchedGrantTarget: g.target(),
		Grantee:            grantee,
	}, nil
}

// listCallerAccessGrantsResult is the answer of ListCallerAccessGrants.
type listCallerAccessGrantsResult struct {
	XMLName   xml.Name          `xml:"ListCallerAccessGrantsResult"`
	Xmlns     string            `xml:"xmlns,attr"`
	NextToken string            `xml:"NextToken,omitempty"`
	Grants    []callerGrantItem `xml:"CallerAccessGrantsList>AccessGrant"`
}

// callerGrantItem is one grant of a ListCallerAccessGrants answer.
type callerGrantItem struct {
	Permission string `xml:"Permission"`
	GrantScope string `xml:"GrantScope"`
}

// listCallerAccessGrants serves ListCallerAccessGrants: the grants of the
// caller's Identity Center user and of the user's groups, in the order
// they were made, a page at a time. The access role is the one role the
// setup lets call it; its sessions without an identity context, whose IAM
// principal has no grant here, list none. With grantscope, only the grants
// that hold the S3 path it starts (the grant covers it) or that lie under
// it (their scope starts with it) are listed. No grant of the local AWS
// names an application, so allowedByApplication changes nothing.
func (a *AWS) listCallerAccessGrants(r *http.Request, caller *principal) (any, *apiError) {
	if aerr := a.checkAccount(r); aerr != nil {
		return nil, aerr
	}
	q := r.URL.Query()
	limit := callerGrantsMaxResults
	if raw := q.Get("maxResults"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 0 || n > callerGrantsMaxResults {
			return nil, s3Err("InvalidRequest", "Invalid maxResults '"+raw+"': must be between 0 and 1000")
		}
		if n > 0 {
			limit = n
		}
	}
	scope := q.Get("grantscope")
	if q.Has("grantscope") && (!strings.HasPrefix(scope, "s3://") || len(scope) > s3MaxTarget) {
		return nil, s3Err("InvalidRequest", "Invalid grantscope '"+scope+"': must be an S3 path that starts with s3://")
	}
	if raw := q.Get("allowedByApplication"); raw != "" && raw != "true" && raw != "false" {
		return nil, s3Err("InvalidRequest", "Invalid allowedByApplication '"+raw+"': must be true or false")
	}
	if caller.role != accessRoleName {
		return nil, s3Err("AccessDenied", "User: "+caller.arn+" is not authorized to perform: s3:ListCallerAccessGrants on resource: "+
			a.accessGrantsInstanceArn())
	}
	var grants []s3Grant
	if caller.user != "" {
		grants = a.s3.grantsOf(a.UserID(caller.user))
	}
	var items []callerGrantItem
	for _, g := range grants {
		target := g.target()
		if scope != "" && !strings.HasPrefix(target, scope) && !strings.HasPrefix(scope, strings.TrimSuffix(target, "*")) {
			continue
		}
		items = append(items, callerGrantItem{Permission: g.access.String(), GrantScope: target})
	}
	start := 0
	if tok := q.Get("nextToken"); tok != "" {
		n, ok := a.openPageToken(tok, "caller-grants:"+caller.accessKeyID)
		if !ok || n > len(items) {
			return nil, s3Err("InvalidRequest", "Invalid nextToken")
		}
		start = n
	}
	res := listCallerAccessGrantsResult{Xmlns: s3ControlNamespace, Grants: items[start:min(start+limit, len(items))]}
	if start+limit < len(items) {
		res.NextToken = a.pageToken(start+limit, "caller-grants:"+caller.accessKeyID)
	}
	return res, nil
}

// pageToken returns the opaque pagination token of position n of a
// listing made for whom.
func (a *AWS) pageToken(n int, whom string) string {
	pos := strconv.Itoa(n)
	return pos + "." + hex.EncodeToString(hmacSHA256(a.secret, "page:"+whom+":"+pos)[:12])
}

// openPageToken returns the position of a token of pageToken made for
// whom, and whether it is one.
func (a *AWS) openPageToken(tok, whom string) (int, bool) {
	pos, _, ok := strings.Cut(tok, ".")
	n, err := strconv.Atoi(pos)
	return n, ok && err == nil && n >= 0 && tok == a.pageToken(n, whom)
}

// accessGrantsInstanceArn is the ARN of the account's S3 Access Grants
// instance.
func (a *AWS) accessGrantsInstanceArn() string {
	return "arn:aws:s3:" + a.region + ":" + a.account + ":access-grants/default"
}

// groupID returns the stable Identity Center group id of name, shaped as a
// UUID.
func (a *AWS) groupID(name string) string {
	h := hex.EncodeToString(hmacSHA256(a.secret, "group:"+name)[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// writeS3ControlError answers e as S3 Control does: an <ErrorResponse>
// whose <Error> holds Code and Message, then RequestId and HostId.
func writeS3ControlError(w http.ResponseWriter, requestID string, e *apiError) {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	buf.WriteString("<ErrorResponse><Error>")
	s3Element(&buf, "Code", e.code)
	s3Element(&buf, "Message", e.msg)
	buf.WriteString("</Error>")
	s3Element(&buf, "RequestId", requestID)
	s3Element(&buf, "HostId", w.Header().Get("X-Amz-Id-2"))
	buf.WriteString("</ErrorResponse>")
	writeBody(w, "application/xml", e.status, buf.Bytes())
}
