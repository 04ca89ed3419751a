package tiptest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// s3MetaHeader is the prefix of user metadata headers.
const s3MetaHeader = "X-Amz-Meta-"

// s3StoredHeaders are the headers of a PutObject that S3 keeps with the
// object and answers on GetObject and HeadObject.
var s3StoredHeaders = []string{"Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language", "Expires"}

// s3ResponseOverrides are the GetObject query parameters that set a header
// of the answer.
var s3ResponseOverrides = map[string]string{
	"response-cache-control":       "Cache-Control",
	"response-content-disposition": "Content-Disposition",
	"response-content-encoding":    "Content-Encoding",
	"response-content-language":    "Content-Language",
	"response-content-type":        "Content-Type",
	"response-expires":             "Expires",
}

// objectArn is the ARN of the object key of bucket.
func objectArn(bucket, key string) string { return "arn:aws:s3:::" + bucket + "/" + key }

// getObject serves GetObject and HeadObject: credentials of GetDataAccess
// with READ on the key are needed; a single byte range is honoured.
func (a *AWS) getObject(w http.ResponseWriter, c *s3Call) *apiError {
	if !a.s3.permits(c.caller, c.bucket, c.key, AccessRead, false) {
		return a.s3Denied(c.caller, "s3:GetObject", objectArn(c.bucket, c.key))
	}
	obj, ok := a.s3.object(c.bucket, c.key)
	if !ok {
		return s3Err("NoSuchKey", "The specified key does not exist.", "Key", c.key)
	}
	size := int64(len(obj.body))
	start, end, ranged, aerr := parseS3Range(c.r.Header.Get("Range"), size)
	if aerr != nil {
		return aerr
	}
	h := w.Header()
	h.Set("Content-Type", obj.contentType)
	h.Set("ETag", obj.etag)
	h.Set("Last-Modified", obj.modified.Format(http.TimeFormat))
	h.Set("Accept-Ranges", "bytes")
	h.Set("X-Amz-Server-Side-Encryption", "AES256")
	for name, value := range obj.metadata {
		h.Set(s3MetaHeader+name, value)
	}
	for name, values := range obj.headers {
		h[name] = values
	}
	query := c.r.URL.Query()
	for param, header := range s3ResponseOverrides {
		if v := query.Get(param); v != "" {
			h.Set(header, v)
		}
	}
	status := http.StatusOK
	if ranged {
		status = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end-1, size))
	} else if strings.EqualFold(c.r.Header.Get("X-Amz-Checksum-Mode"), "ENABLED") {
		h.Set(s3ChecksumHeader+obj.checksum.algorithm, obj.checksum.value)
		h.Set(s3ChecksumHeader+"Type", "FULL_OBJECT")
	}
	h.Set("Content-Length", strconv.FormatInt(end-start, 10))
	w.WriteHeader(status)
	if c.op == opGetObject {
		_, _ = w.Write(obj.body[start:end])
	}
	return nil
}

// parseS3Range returns the byte range [start, end) of a Range header of
// one range ("bytes=a-b", "bytes=a-" or "bytes=-n"), and whether there was
// one; like S3, it ignores a header it cannot parse (the whole object is
// answered) and refuses a range that starts beyond the object.
func parseS3Range(header string, size int64) (start, end int64, ranged bool, aerr *apiError) {
	spec, ok := strings.CutPrefix(header, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, size, false, nil
	}
	first, last, ok := strings.Cut(spec, "-")
	if !ok {
		return 0, size, false, nil
	}
	unsatisfiable := s3Err("InvalidRange", "The requested range is not satisfiable",
		"RangeRequested", header, "ActualObjectSize", strconv.FormatInt(size, 10))
	if first == "" { // the last n bytes
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n < 0 {
			return 0, size, false, nil
		}
		if n == 0 || size == 0 {
			return 0, 0, false, unsatisfiable
		}
		return max(size-n, 0), size, true, nil
	}
	s, err := strconv.ParseInt(first, 10, 64)
	if err != nil || s < 0 {
		return 0, size, false, nil
	}
	e := size - 1
	if last != "" {
		if e, err = strconv.ParseInt(last, 10, 64); err != nil || e < s {
			return 0, size, false, nil
		}
	}
	if s >= size {
		return 0, 0, false, unsatisfiable
	}
	return s, min(e+1, size), true, nil
}

// putObject serves PutObject: credentials of GetDataAccess with WRITE on
// the key are needed; the Content-MD5 and x-amz-checksum-* headers are
// verified.
func (a *AWS) putObject(w http.ResponseWriter, c *s3Call) *apiError {
	if !a.s3.permits(c.caller, c.bucket, c.key, AccessWrite, false) {
		return a.s3Denied(c.caller, "s3:PutObject", objectArn(c.bucket, c.key))
	}
	if len(c.key) > s3MaxKey {
		return s3Err("KeyTooLongError", "Your key is too long",
			"MaxSizeAllowed", strconv.Itoa(s3MaxKey), "Size", strconv.Itoa(len(c.key)))
	}
	if !utf8.ValidString(c.key) {
		return s3Err("InvalidArgument", "Object key is not valid UTF-8.")
	}
	if strings.Contains(c.r.Header.Get("Content-Encoding"), "aws-chunked") {
		return s3Err("NotImplemented", "Content-Encoding aws-chunked is not implemented by the local S3.")
	}
	check, aerr := checkS3Digests(c.r, c.body)
	if aerr != nil {
		return aerr
	}
	obj := newS3Object(c.body, c.r.Header.Get("Content-Type"), check, requestMetadata(c.r), requestStoredHeaders(c.r), a.clock.Now())
	if !a.s3.store(c.bucket, c.key, obj) {
		return s3Err("NoSuchBucket", "The specified bucket does not exist", "BucketName", c.bucket)
	}
	h := w.Header()
	h.Set("ETag", obj.etag)
	h.Set("X-Amz-Server-Side-Encryption", "AES256")
	if check.algorithm != "" {
		h.Set(s3ChecksumHeader+check.algorithm, check.value)
		h.Set(s3ChecksumHeader+"Type", "FULL_OBJECT")
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}
