package tiptest

import (
	"encoding/xml"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// s3MaxDeleteKeys is the most keys one DeleteObjects takes.
const s3MaxDeleteKeys = 1000

// deleteObject serves DeleteObject: credentials of GetDataAccess with
// WRITE on the key are needed. Deleting a key that does not exist
// succeeds, as in a bucket without versioning.
func (a *AWS) deleteObject(w http.ResponseWriter, c *s3Call) *apiError {
	if !a.s3.permits(c.caller, c.bucket, c.key, AccessWrite, false) {
		return a.s3Denied(c.caller, "s3:DeleteObject", objectArn(c.bucket, c.key))
	}
	if !a.s3.remove(c.bucket, c.key) {
		return s3Err("NoSuchBucket", "The specified bucket does not exist", "BucketName", c.bucket)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteRequest is the body of DeleteObjects.
type deleteRequest struct {
	XMLName xml.Name `xml:"Delete"`
	Objects []struct {
		Key       string `xml:"Key"`
		VersionID string `xml:"VersionId"`
	} `xml:"Object"`
	Quiet bool `xml:"Quiet"`
}

// deleteResult is the answer of DeleteObjects.
type deleteResult struct {
	XMLName xml.Name        `xml:"DeleteResult"`
	Xmlns   string          `xml:"xmlns,attr"`
	Deleted []deletedObject `xml:"Deleted"`
	Errors  []deleteError   `xml:"Error"`
}

type deletedObject struct {
	Key string `xml:"Key"`
}

type deleteError struct {
	Key     string `xml:"Key"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

// deleteObjects serves DeleteObjects: the body must carry a Content-MD5 or
// an x-amz-checksum-* header that matches it, and list 1 to 1000 keys. As
// in S3, each key is authorised on its own (WRITE on the key): a key the
// credentials do not reach is answered in the result's Error elements
// with AccessDenied and left in place, the others are deleted. Quiet mode
// answers only the errors.
func (a *AWS) deleteObjects(w http.ResponseWriter, c *s3Call) *apiError {
	hasChecksum := c.r.Header.Get("Content-Md5") != ""
	for name := range c.r.Header {
		if strings.HasPrefix(name, s3ChecksumHeader) && !s3ChecksumNotAValue[name] {
			hasChecksum = true
		}
	}
	if !hasChecksum {
		return s3Err("InvalidRequest", "Missing required header for this request: Content-MD5 or x-amz-checksum-*")
	}
	if _, aerr := checkS3Digests(c.r, c.body); aerr != nil {
		return aerr
	}
	var req deleteRequest
	if err := xml.Unmarshal(c.body, &req); err != nil || len(req.Objects) == 0 || len(req.Objects) > s3MaxDeleteKeys {
		return s3Err("MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")
	}
	res := deleteResult{Xmlns: s3Namespace}
	for _, o := range req.Objects {
		switch {
		case o.Key == "" || len(o.Key) > s3MaxKey || !utf8.ValidString(o.Key):
			res.Errors = append(res.Errors, deleteError{Key: o.Key, Code: "InvalidArgument", Message: "Invalid key"})
		case o.VersionID != "" && o.VersionID != "null":
			res.Errors = append(res.Errors, deleteError{Key: o.Key, Code: "NoSuchVersion",
				Message: "The specified version does not exist."})
		case !a.s3.permits(c.caller, c.bucket, o.Key, AccessWrite, false):
			res.Errors = append(res.Errors, deleteError{Key: o.Key, Code: "AccessDenied", Message: "Access Denied"})
		default:
			if !a.s3.remove(c.bucket, o.Key) {
				return s3Err("NoSuchBucket", "The specified bucket does not exist", "BucketName", c.bucket)
			}
			if !req.Quiet {
				res.Deleted = append(res.Deleted, deletedObject{Key: o.Key})
			}
		}
	}
	return writeS3XML(w, res)
}

// copyObjectResult is the answer of CopyObject.
type copyObjectResult struct {
	XMLName           xml.Name `xml:"CopyObjectResult"`
	Xmlns             string   `xml:"xmlns,attr"`
	ETag              string   `xml:"ETag"`
	LastModified      string   `xml:"LastModified"`
	ChecksumType      string   `xml:"ChecksumType,omitempty"`
	ChecksumCRC32     string   `xml:"ChecksumCRC32,omitempty"`
	ChecksumCRC32C    string   `xml:"ChecksumCRC32C,omitempty"`
	ChecksumCRC64NVME string   `xml:"ChecksumCRC64NVME,omitempty"`
	ChecksumSHA1      string   `xml:"ChecksumSHA1,omitempty"`
	ChecksumSHA256    string   `xml:"ChecksumSHA256,omitempty"`
}

// parseCopySource reads the x-amz-copy-source header as S3 does:
// "bucket/key" or "/bucket/key", URL-encoded, with an optional
// "?versionId=". It returns the bucket, the decoded key and the version.
func parseCopySource(header string) (bucket, key, version string, aerr *apiError) {
	invalid := s3Err("InvalidArgument", "Invalid copy source object key", "ArgumentName", "x-amz-copy-source",
		"ArgumentValue", header)
	raw, query, hasQuery := strings.Cut(header, "?")
	if hasQuery {
		q, err := url.ParseQuery(query)
		if err != nil || len(q) != 1 || !q.Has("versionId") {
			return "", "", "", invalid
		}
		version = q.Get("versionId")
	}
	decoded, err := url.PathUnescape(strings.TrimPrefix(raw, "/"))
	if err != nil {
		return "", "", "", s3Err("InvalidArgument", "Invalid copy source encoding", "ArgumentName", "x-amz-copy-source",
			"ArgumentValue", header)
	}
	bucket, key, ok := strings.Cut(decoded, "/")
	if !ok || bucket == "" || key == "" || len(key) > s3MaxKey || !utf8.ValidString(key) {
		return "", "", "", invalid
	}
	return bucket, key, version, nil
}

// copyObject serves CopyObject (a PUT with x-amz-copy-source): the
// request's credentials must reach the source with READ and the
// destination with WRITE, as S3 checks both with the one signature. The
// metadata directive COPY (the default) keeps the source's Content-Type,
// metadata and stored headers; REPLACE takes the request's. A copy onto
// itself must REPLACE.
func (a *AWS) copyObject(w http.ResponseWriter, c *s3Call) *apiError {
	srcBucket, srcKey, version, aerr := parseCopySource(c.r.Header.Get("X-Amz-Copy-Source"))
	if aerr != nil {
		return aerr
	}
	if version != "" && version != "null" {
		return s3Err("NotImplemented", "A header or query you provided implies functionality that is not implemented: "+
			"the local S3 has no versioning.")
	}
	if len(c.key) > s3MaxKey {
		return s3Err("KeyTooLongError", "Your key is too long",
			"MaxSizeAllowed", strconv.Itoa(s3MaxKey), "Size", strconv.Itoa(len(c.key)))
	}
	if len(c.body) != 0 {
		return s3Err("InvalidRequest", "A copy request must not have a body.")
	}
	if !a.s3.permits(c.caller, srcBucket, srcKey, AccessRead, false) {
		return a.s3Denied(c.caller, "s3:GetObject", objectArn(srcBucket, srcKey))
	}
	if !a.s3.permits(c.caller, c.bucket, c.key, AccessWrite, false) {
		return a.s3Denied(c.caller, "s3:PutObject", objectArn(c.bucket, c.key))
	}
	if !a.s3.bucketExists(srcBucket) {
		return s3Err("NoSuchBucket", "The specified bucket does not exist", "BucketName", srcBucket)
	}
	src, ok := a.s3.object(srcBucket, srcKey)
	if !ok {
		return s3Err("NoSuchKey", "The specified key does not exist.", "Key", srcKey)
	}
	directive := c.r.Header.Get("X-Amz-Metadata-Directive")
	switch directive {
	case "", "COPY", "REPLACE":
	default:
		return s3Err("InvalidArgument", "Unknown metadata directive.", "ArgumentName", "x-amz-metadata-directive",
			"ArgumentValue", directive)
	}
	if directive != "REPLACE" && srcBucket == c.bucket && srcKey == c.key {
		return s3Err("InvalidRequest", "This copy request is illegal because it is trying to copy an object to itself "+
			"without changing the object's metadata, storage class, website redirect location or encryption attributes.")
	}
	contentType, meta, stored := src.contentType, maps.Clone(src.metadata), src.headers.Clone()
	if directive == "REPLACE" {
		contentType, meta, stored = c.r.Header.Get("Content-Type"), requestMetadata(c.r), requestStoredHeaders(c.r)
	}
	obj := newS3Object(src.body, contentType, src.checksum, meta, stored, a.clock.Now())
	if !a.s3.store(c.bucket, c.key, obj) {
		return s3Err("NoSuchBucket", "The specified bucket does not exist", "BucketName", c.bucket)
	}
	res := copyObjectResult{Xmlns: s3Namespace, ETag: obj.etag, LastModified: obj.modified.Format(s3TimeFormat),
		ChecksumType: "FULL_OBJECT"}
	switch obj.checksum.algorithm {
	case "CRC32":
		res.ChecksumCRC32 = obj.checksum.value
	case "CRC32C":
		res.ChecksumCRC32C = obj.checksum.value
	case "CRC64NVME":
		res.ChecksumCRC64NVME = obj.checksum.value
	case "SHA1":
		res.ChecksumSHA1 = obj.checksum.value
	case "SHA256":
		res.ChecksumSHA256 = obj.checksum.value
	}
	w.Header().Set("X-Amz-Server-Side-Encryption", "AES256")
	return writeS3XML(w, res)
}

// requestMetadata returns the x-amz-meta-* headers of r, without the
// prefix and lowercase, or nil.
func requestMetadata(r *http.Request) map[string]string {
	var meta map[string]string
	for name, values := range r.Header {
		if suffix, ok := strings.CutPrefix(name, s3MetaHeader); ok && len(values) > 0 {
			if meta == nil {
				meta = map[string]string{}
			}
			meta[strings.ToLower(suffix)] = strings.Join(values, ",")
		}
	}
	return meta
}

// requestStoredHeaders returns the s3StoredHeaders r carries, or nil.
func requestStoredHeaders(r *http.Request) http.Header {
	var stored http.Header
	for _, name := range s3StoredHeaders {
		if v := r.Header.Values(name); len(v) > 0 {
			if stored == nil {
				stored = http.Header{}
			}
			stored[name] = slices.Clone(v)
		}
	}
	return stored
}
