package tiptest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The payload hashes of x-amz-content-sha256 that are not a SHA-256.
const (
	s3UnsignedPayload = "UNSIGNED-PAYLOAD"
	s3StreamingPrefix = "STREAMING-"
)

// s3Subresources are the query parameters that name an S3 operation other
// than the plain object and bucket operations; a request carrying one is
// answered NotImplemented.
var s3Subresources = []string{
	"accelerate", "acl", "analytics", "attributes", "cors", "delete", "encryption",
	"intelligent-tiering", "inventory", "legal-hold", "lifecycle", "location", "logging",
	"metadataConfiguration", "metadataTable", "metrics", "notification", "object-lock",
	"ownershipControls", "partNumber", "policy", "policyStatus", "publicAccessBlock",
	"renameObject", "replication", "requestPayment", "restore", "retention", "select",
	"session", "tagging", "torrent", "uploadId", "uploads", "versionId", "versioning",
	"versions", "website",
}

// s3UnsupportedHeaders are request headers asking for behaviour the local
// S3 does not model; a request carrying one is answered NotImplemented
// rather than served as if the header were absent.
var s3UnsupportedHeaders = []string{
	"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since",
	"X-Amz-Copy-Source-If-Match", "X-Amz-Copy-Source-If-Modified-Since", "X-Amz-Copy-Source-If-None-Match",
	"X-Amz-Copy-Source-If-Unmodified-Since", "X-Amz-Copy-Source-Range",
	"X-Amz-Copy-Source-Server-Side-Encryption-Customer-Algorithm", "X-Amz-Server-Side-Encryption-Customer-Algorithm",
	"X-Amz-Write-Offset-Bytes",
}

// s3Call is one S3 request being served.
type s3Call struct {
	r         *http.Request
	op        string
	supported bool
	bucket    string
	key       string
	body      []byte
	caller    *principal
}

// isS3Request reports whether r is for the local S3: signed (in the
// Authorization header or, for a presigned URL, in the query) with a
// credential scope of the service "s3"; or without a credential scope, not
// a POST (STS and SSO OIDC are served with POST only) and addressed to
// neither STS ("/") nor SSO OIDC ("/token"). A bucket may so be named
// "token": a signed S3 request is dispatched by its scope, not by its path.
func isS3Request(r *http.Request) bool {
	credential := ""
	if h := r.Header.Get("Authorization"); h != "" {
		_, rest, _ := strings.Cut(h, "Credential=")
		credential, _, _ = strings.Cut(rest, ",")
	} else {
		credential = r.URL.Query().Get("X-Amz-Credential")
	}
	if parts := strings.Split(strings.TrimSpace(credential), "/"); len(parts) == 5 {
		return parts[3] == "s3"
	}
	return r.Method != http.MethodPost && r.URL.Path != "/" && r.URL.Path != "/token"
}

// newS3Call finds the bucket, the key and the operation of r.
func newS3Call(r *http.Request) *s3Call {
	c := &s3Call{r: r}
	c.bucket, c.key, _ = strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	query := r.URL.Query()
	subresource := ""
	for _, name := range s3Subresources {
		if query.Has(name) {
			subresource = name
			break
		}
	}
	c.op, c.supported = s3Operation(r.Method, c.bucket, c.key, query)
	switch {
	case subresource == "delete" && r.Method == http.MethodPost && c.bucket != "" && c.key == "":
		c.op, c.supported = opDeleteObjects, true
	case subresource != "":
		c.op, c.supported = c.op+"?"+subresource, false
	case c.op == opPutObject && r.Header.Get("X-Amz-Copy-Source") != "":
		c.op = opCopyObject
	case r.Header.Get("X-Amz-Copy-Source") != "":
		c.supported = false
	}
	for _, h := range s3UnsupportedHeaders {
		if r.Header.Get(h) != "" {
			c.supported = false
		}
	}
	if xid := query.Get("x-id"); xid != "" && !c.supported {
		c.op = xid
	}
	return c
}

// s3Operation names the operation of a request without subresource and
// reports whether the local S3 serves it.
func s3Operation(method, bucket, key string, query url.Values) (string, bool) {
	switch {
	case bucket == "":
		return "ListBuckets", false
	case key == "":
		switch method {
		case http.MethodGet:
			if query.Get("list-type") == "2" {
				return opListObjectsV2, true
			}
			return "ListObjects", false
		case http.MethodHead:
			return "HeadBucket", false
		case http.MethodPut:
			return "CreateBucket", false
		case http.MethodDelete:
			return "DeleteBucket", false
		}
	default:
		switch method {
		case http.MethodGet:
			return opGetObject, true
		case http.MethodHead:
			return opHeadObject, true
		case http.MethodPut:
			return opPutObject, true
		case http.MethodDelete:
			return opDeleteObject, true
		}
	}
	if key == "" {
		return method + " /{Bucket}", false
	}
	return method + " /{Bucket}/{Key+}", false
}

// serveS3 serves a restXml S3 request, path-style: /{Bucket}/{Key+}; or
// an S3 Control request, sent to the host of an account.
func (a *AWS) serveS3(w http.ResponseWriter, r *http.Request) {
	if a.isS3ControlRequest(r) {
		a.serveS3Control(w, r)
		return
	}
	requestID := strings.ToUpper(hex.EncodeToString(randomBytes(8))) // S3's shape
	w.Header().Set("X-Amz-Request-Id", requestID)
	w.Header().Set("X-Amz-Id-2", randomToken("", 48))
	c := newS3Call(r)
	if a.hostLabel(r) != "" { // virtual-hosted-style, or S3 Control at another path
		c.supported = false
	}
	a.record(c.op, r)
	body, readErr := c.readBody(w)
	if err := a.applyFault(r.Context(), c.op); err != nil {
		var aerr *apiError
		if errors.As(err, &aerr) {
			writeS3Error(w, r, requestID, s3FaultError(aerr))
		}
		return
	}
	if readErr != nil {
		writeS3Error(w, r, requestID, readErr)
		return
	}
	c.body = body
	if aerr := a.runS3(w, c); aerr != nil {
		writeS3Error(w, r, requestID, aerr)
	}
}

// readBody reads the body of a PutObject (at most s3MaxObject bytes, with
// a Content-Length) or of any other request (at most awsMaxBody bytes).
func (c *s3Call) readBody(w http.ResponseWriter) ([]byte, *apiError) {
	limit := int64(awsMaxBody)
	if c.op == opPutObject {
		limit = s3MaxObject
		switch {
		case c.r.ContentLength < 0:
			return nil, s3Err("MissingContentLength", "You must provide the Content-Length HTTP header.")
		case c.r.ContentLength > s3MaxObject:
			return nil, s3Err("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size",
				"MaxSizeAllowed", strconv.Itoa(s3MaxObject), "ProposedSize", strconv.FormatInt(c.r.ContentLength, 10))
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, c.r.Body, limit))
	if err != nil {
		return nil, s3Err("IncompleteBody", "The request body could not be read or is too large.")
	}
	return body, nil
}

// runS3 authenticates the call and serves it; it answers the call itself
// unless it returns an error.
func (a *AWS) runS3(w http.ResponseWriter, c *s3Call) *apiError {
	caller, aerr := a.s3Authenticate(c.r, c.body)
	if aerr != nil {
		return aerr
	}
	c.caller = caller
	if !c.supported {
		return s3Err("NotImplemented", "A header or query you provided implies functionality that is not implemented: "+
			c.op+" is not served by the local S3.")
	}
	if !a.s3.bucketExists(c.bucket) {
		return s3Err("NoSuchBucket", "The specified bucket does not exist", "BucketName", c.bucket)
	}
	if owner := c.r.Header.Get("X-Amz-Expected-Bucket-Owner"); owner != "" && owner != a.account {
		return s3Err("AccessDenied", "Access Denied")
	}
	switch c.op {
	case opListObjectsV2:
		return a.listObjectsV2(w, c)
	case opGetObject, opHeadObject:
		return a.getObject(w, c)
	case opDeleteObject:
		return a.deleteObject(w, c)
	case opDeleteObjects:
		return a.deleteObjects(w, c)
	case opCopyObject:
		return a.copyObject(w, c)
	default:
		return a.putObject(w, c)
	}
}

// s3Authenticate verifies SigV4 as S3 does: the canonical URI is the path
// URI-encoded once, the payload hash is the x-amz-content-sha256 header,
// which must be the SHA-256 of the body.
func (a *AWS) s3Authenticate(r *http.Request, body []byte) (*principal, *apiError) {
	header := r.Header.Get("Authorization")
	if header == "" {
		if r.URL.Query().Has("X-Amz-Signature") || r.URL.Query().Has("X-Amz-Credential") {
			return nil, s3Err("NotImplemented", "Query-string authentication (presigned URLs) is not implemented by the local S3; "+
				"sign with the Authorization header.")
		}
		return nil, s3Err("AccessDenied", "Anonymous access is not allowed by the local S3.")
	}
	v := a.s3.verifier
	auth, serr := parseSigv4Authorization(header)
	if serr != nil {
		return nil, s3Err("AuthorizationHeaderMalformed", "The authorization header is malformed; "+serr.msg)
	}
	if aerr := s3CheckSkew(v, r); aerr != nil {
		return nil, aerr
	}
	signedAt, serr := v.checkDate(r, auth)
	if serr != nil {
		if serr.problem == sigIncomplete {
			return nil, s3Err("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")
		}
		return nil, s3Err("AuthorizationHeaderMalformed", "The authorization header is malformed; "+serr.msg)
	}
	if serr := v.checkScope(auth); serr != nil {
		if serr.problem == sigWrongRegion {
			return nil, s3Err("AuthorizationHeaderMalformed", fmt.Sprintf(
				"The authorization header is malformed; the region '%s' is wrong; expecting '%s'", auth.region, a.region),
				"Region", a.region)
		}
		return nil, s3Err("AuthorizationHeaderMalformed", "The authorization header is malformed; "+serr.msg)
	}
	creds, serr := v.checkCredentials(r, auth)
	if serr != nil {
		switch serr.problem {
		case sigUnknownKey:
			return nil, s3Err("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.",
				"AWSAccessKeyId", auth.accessKeyID)
		case sigExpired:
			return nil, s3Err("ExpiredToken", "The provided token has expired.")
		}
		return nil, s3Err("InvalidToken", "The provided token is malformed or otherwise invalid.")
	}
	payloadHash, aerr := s3PayloadHash(r)
	if aerr != nil {
		return nil, aerr
	}
	// S3's path is URI-encoded once, not twice as for other services.
	canonical, serr := canonicalRequest(r, s3CanonicalURI(r.URL.Path), auth.signedHeaders, payloadHash)
	if serr != nil {
		return nil, s3Err("SignatureDoesNotMatch", serr.msg)
	}
	want := sigv4Signature(creds.secret, auth, signedAt, canonical)
	if subtle.ConstantTimeCompare(want, auth.signature) != 1 {
		sum := sha256.Sum256([]byte(canonical))
		return nil, s3Err("SignatureDoesNotMatch",
			"The request signature we calculated does not match the signature you provided. Check your key and signing method.",
			"AWSAccessKeyId", auth.accessKeyID,
			"CanonicalRequest", canonical,
			"SignatureProvided", hex.EncodeToString(auth.signature),
			"StringToSign", sigv4Algorithm+"\n"+signedAt.Format(sigv4TimeFormat)+"\n"+auth.scope()+"\n"+hex.EncodeToString(sum[:]))
	}
	sum := sha256.Sum256(body)
	if computed := hex.EncodeToString(sum[:]); computed != payloadHash {
		return nil, s3Err("XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.",
			"ClientComputedContentSHA256", payloadHash, "S3ComputedContentSHA256", computed)
	}
	p := a.principal(auth.accessKeyID)
	if p == nil {
		return nil, s3Err("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.",
			"AWSAccessKeyId", auth.accessKeyID)
	}
	return p, nil
}

// s3CheckSkew refuses an X-Amz-Date too far from the wall clock.
func s3CheckSkew(v *sigv4Verifier, r *http.Request) *apiError {
	t, err := time.Parse(sigv4TimeFormat, r.Header.Get("X-Amz-Date"))
	if err != nil {
		return nil // checkDate refuses it
	}
	now := v.wallNow().UTC()
	if t.Before(now.Add(-sigv4MaxSkew)) || t.After(now.Add(sigv4MaxSkew)) {
		return s3Err("RequestTimeTooSkewed", "The difference between the request time and the current time is too large.",
			"RequestTime", t.Format(sigv4TimeFormat), "ServerTime", now.Format(time.RFC3339),
			"MaxAllowedSkewMilliseconds", strconv.FormatInt(sigv4MaxSkew.Milliseconds(), 10))
	}
	return nil
}

// s3PayloadHash returns the x-amz-content-sha256 header, which S3
// requires. The local S3 accepts only a hex SHA-256 there: it is what the
// aws-sdk-go-v2 s3 client sends on an http:// endpoint (UNSIGNED-PAYLOAD
// and the aws-chunked STREAMING-* forms are what it sends over TLS).
func s3PayloadHash(r *http.Request) (string, *apiError) {
	h := r.Header.Get("X-Amz-Content-Sha256")
	switch {
	case h == "":
		return "", s3Err("InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
	case h == s3UnsignedPayload || strings.HasPrefix(h, s3StreamingPrefix):
		return "", s3Err("NotImplemented", "x-amz-content-sha256 '"+h+"' is not implemented by the local S3, "+
			"which is served over http; the payload must be signed with its SHA-256.")
	}
	if raw, err := hex.DecodeString(h); err != nil || len(raw) != sha256.Size || strings.ToLower(h) != h {
		return "", s3Err("InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "+
			"STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, "+
			"STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER or a valid sha256 value.",
			"ArgumentName", "x-amz-content-sha256", "ArgumentValue", h)
	}
	return h, nil
}

// s3CanonicalURI URI-encodes the decoded path once: every byte but the
// unreserved characters and "/" becomes %XX.
func s3CanonicalURI(path string) string {
	if path == "" {
		return "/"
	}
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c == '/' || isUnreserved(c) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// s3Denied is S3's AccessDenied for caller on action and resource.
func (a *AWS) s3Denied(caller *principal, action, resource string) *apiError {
	reason := "because no identity-based policy allows the " + action + " action"
	if _, vended := a.s3.scopeOf(caller.accessKeyID); vended {
		reason = "because no session policy allows the " + action + " action: the credentials of GetDataAccess reach only the scope of their grant"
	} else if caller.user != "" {
		reason += " (an identity-enhanced session reaches S3 only through credentials of S3 Access Grants GetDataAccess)"
	}
	return s3Err("AccessDenied", fmt.Sprintf("User: %s is not authorized to perform: %s on resource: \"%s\" %s",
		caller.arn, action, resource, reason))
}
