package tiptest

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// S3 listing constants.
const (
	s3Namespace       = "http://s3.amazonaws.com/doc/2006-03-01/"
	s3MaxListKeys     = 1000
	s3TimeFormat      = "2006-01-02T15:04:05.000Z"
	s3ContinuationTag = "tiptest-v1:"
)

// listBucketResult is the answer of ListObjectsV2.
type listBucketResult struct {
	XMLName               xml.Name           `xml:"ListBucketResult"`
	Xmlns                 string             `xml:"xmlns,attr"`
	Name                  string             `xml:"Name"`
	Prefix                string             `xml:"Prefix"`
	Delimiter             string             `xml:"Delimiter,omitempty"`
	MaxKeys               int                `xml:"MaxKeys"`
	EncodingType          string             `xml:"EncodingType,omitempty"`
	KeyCount              int                `xml:"KeyCount"`
	IsTruncated           bool               `xml:"IsTruncated"`
	ContinuationToken     string             `xml:"ContinuationToken,omitempty"`
	NextContinuationToken string             `xml:"NextContinuationToken,omitempty"`
	StartAfter            string             `xml:"StartAfter,omitempty"`
	Contents              []listObject       `xml:"Contents"`
	CommonPrefixes        []listCommonPrefix `xml:"CommonPrefixes"`
}

// listObject is a Contents element of ListObjectsV2.
type listObject struct {
	Key               string     `xml:"Key"`
	LastModified      string     `xml:"LastModified"`
	ETag              string     `xml:"ETag"`
	ChecksumAlgorithm string     `xml:"ChecksumAlgorithm"`
	ChecksumType      string     `xml:"ChecksumType"`
	Size              int        `xml:"Size"`
	Owner             *listOwner `xml:"Owner,omitempty"`
	StorageClass      string     `xml:"StorageClass"`
}

type listOwner struct {
	ID string `xml:"ID"`
}

type listCommonPrefix struct {
	Prefix string `xml:"Prefix"`
}

// listParams are the validated query parameters of ListObjectsV2.
type listParams struct {
	prefix, delimiter, startAfter string
	token, marker                 string // continuation-token and what it decodes to
	hasToken                      bool
	maxKeys                       int
	encodeURL, fetchOwner         bool
}

// parseListParams validates the query of a ListObjectsV2.
func parseListParams(q url.Values) (*listParams, *apiError) {
	p := &listParams{
		prefix:     q.Get("prefix"),
		delimiter:  q.Get("delimiter"),
		startAfter: q.Get("start-after"),
		token:      q.Get("continuation-token"),
		maxKeys:    s3MaxListKeys,
		fetchOwner: q.Get("fetch-owner") == "true",
	}
	if raw := q.Get("max-keys"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 0 {
			return nil, s3Err("InvalidArgument", "Provided max-keys not an integer or within integer range",
				"ArgumentName", "max-keys", "ArgumentValue", raw)
		}
		p.maxKeys = n
	}
	switch enc := q.Get("encoding-type"); enc {
	case "":
	case "url":
		p.encodeURL = true
	default:
		return nil, s3Err("InvalidArgument", "Invalid Encoding Method specified in Request",
			"ArgumentName", "encoding-type", "ArgumentValue", enc)
	}
	if q.Has("continuation-token") {
		raw, err := base64.StdEncoding.DecodeString(p.token)
		marker, ok := strings.CutPrefix(string(raw), s3ContinuationTag)
		if err != nil || !ok {
			return nil, s3Err("InvalidArgument", "The continuation token provided is incorrect",
				"ArgumentName", "continuation-token")
		}
		p.marker, p.hasToken = marker, true
	}
	return p, nil
}

// listObjectsV2 serves ListObjectsV2: the caller must hold credentials of
// GetDataAccess with READ on a scope that holds the prefix (listing the
// bucket root needs a scope of the whole bucket).
func (a *AWS) listObjectsV2(w http.ResponseWriter, c *s3Call) *apiError {
	p, aerr := parseListParams(c.r.URL.Query())
	if aerr != nil {
		return aerr
	}
	if !a.s3.permits(c.caller, c.bucket, p.prefix, AccessRead, true) {
		return a.s3Denied(c.caller, "s3:ListBucket", "arn:aws:s3:::"+c.bucket)
	}
	keys, objects := a.s3.snapshot(c.bucket, p.prefix)
	res := listBucketResult{
		Xmlns: s3Namespace, Name: c.bucket, Prefix: p.encode(p.prefix), Delimiter: p.encode(p.delimiter),
		MaxKeys: min(p.maxKeys, s3MaxListKeys), StartAfter: p.encode(p.startAfter), ContinuationToken: p.token,
	}
	if p.encodeURL {
		res.EncodingType = "url"
	}
	var owner *listOwner
	if p.fetchOwner {
		sum := sha256.Sum256([]byte("canonical-user:" + a.account))
		owner = &listOwner{ID: hex.EncodeToString(sum[:])}
	}
	last := ""
	for _, key := range keys {
		if key <= p.startAfter {
			continue
		}
		entry, isPrefix := key, false
		if p.delimiter != "" {
			if i := strings.Index(key[len(p.prefix):], p.delimiter); i >= 0 {
				entry, isPrefix = key[:len(p.prefix)+i+len(p.delimiter)], true
			}
		}
		// Entries (keys and common prefixes) come in order; the token is
		// the last one answered.
		if (p.hasToken && entry <= p.marker) || (isPrefix && entry == last) {
			continue
		}
		if res.KeyCount >= res.MaxKeys {
			res.IsTruncated = res.MaxKeys > 0
			break
		}
		if isPrefix {
			res.CommonPrefixes = append(res.CommonPrefixes, listCommonPrefix{Prefix: p.encode(entry)})
		} else {
			obj := objects[key]
			res.Contents = append(res.Contents, listObject{
				Key: p.encode(key), LastModified: obj.modified.Format(s3TimeFormat), ETag: obj.etag,
				ChecksumAlgorithm: obj.checksum.algorithm, ChecksumType: "FULL_OBJECT",
				Size: len(obj.body), Owner: owner, StorageClass: "STANDARD",
			})
		}
		res.KeyCount++
		last = entry
	}
	if res.IsTruncated {
		res.NextContinuationToken = base64.StdEncoding.EncodeToString([]byte(s3ContinuationTag + last))
	}
	return writeS3XML(w, res)
}

// encode returns s URL-encoded when the request asked for encoding-type
// url, else s.
func (p *listParams) encode(s string) string {
	if p.encodeURL {
		return url.QueryEscape(s)
	}
	return s
}

// snapshot returns, sorted, the keys of bucket that start with prefix, and
// their objects.
func (s *s3Store) snapshot(bucket, prefix string) ([]string, map[string]*s3Object) {
	s.mu.Lock()
	defer s.mu.Unlock()
	objects := map[string]*s3Object{}
	var keys []string
	if b := s.buckets[bucket]; b != nil {
		for k, obj := range b.objects {
			if strings.HasPrefix(k, prefix) {
				keys = append(keys, k)
				objects[k] = obj
			}
		}
	}
	sort.Strings(keys)
	return keys, objects
}

// writeS3XML answers 200 with v as an XML document, as S3 answers an
// operation that succeeded.
func writeS3XML(w http.ResponseWriter, v any) *apiError {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(v); err != nil {
		return s3Err("InternalError", "")
	}
	writeBody(w, "application/xml", http.StatusOK, buf.Bytes())
	return nil
}
