package tiptest

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// The S3 operations the local AWS serves, as named by AWS.Calls and
// AWS.SetFault.
const (
	opListObjectsV2 = "ListObjectsV2"
	opGetObject     = "GetObject"
	opPutObject     = "PutObject"
	opHeadObject    = "HeadObject"
	opDeleteObject  = "DeleteObject"
	opDeleteObjects = "DeleteObjects"
	opCopyObject    = "CopyObject"
)

// S3 limits.
const (
	// s3MaxObject bounds the objects PutObject accepts (S3 allows 5 GiB in
	// one PUT; a local test needs far less).
	s3MaxObject = 32 << 20
	// s3MaxKey is the longest key S3 accepts, in bytes of UTF-8.
	s3MaxKey = 1024
)

// bucketNamePattern is S3's general purpose bucket naming rule: 3 to 63
// lowercase letters, digits, dots and hyphens, starting and ending with a
// letter or digit.
var bucketNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// Access is what an S3 access grant allows on the objects under its
// prefix.
type Access int

// The access levels of an access grant, as S3 Access Grants names them.
const (
	// AccessRead allows GetObject, HeadObject, ListObjectsV2 of a prefix
	// within the grant's prefix, and reading the source of a CopyObject.
	AccessRead Access = 1
	// AccessWrite allows PutObject, DeleteObject, DeleteObjects, and
	// writing the destination of a CopyObject (whose source needs READ
	// with the same credentials).
	AccessWrite Access = 2
	// AccessReadWrite allows both.
	AccessReadWrite = AccessRead | AccessWrite
)

// String returns "READ", "WRITE" or "READWRITE", the permission names of S3
// Access Grants.
func (a Access) String() string {
	switch a {
	case AccessRead:
		return "READ"
	case AccessWrite:
		return "WRITE"
	case AccessReadWrite:
		return "READWRITE"
	}
	return fmt.Sprintf("Access(%d)", int(a))
}

// s3Store is the state of the local S3 and S3 Access Grants: buckets,
// objects, access grants, the group memberships of Identity Center users,
// and the scope of each set of credentials GetDataAccess vended.
type s3Store struct {
	verifier *sigv4Verifier
	// locationRole is the role of the S3 Access Grants location, whose
	// sessions GetDataAccess vends.
	locationRole roleModel

	mu      sync.Mutex
	buckets map[string]*s3Bucket
	grants  []s3Grant
	groups  map[string][]string  // identity store user ID => groups
	scopes  map[string]dataScope // access key id => scope of GetDataAccess credentials
}

// s3Bucket is a bucket and its objects by key.
type s3Bucket struct {
	objects map[string]*s3Object
}

// s3Object is a stored object; it is never changed once stored (a new
// PutObject replaces it), so readers may use it without the lock.
type s3Object struct {
	body        []byte
	etag        string // quoted hex MD5
	contentType string
	modified    time.Time
	checksum    s3Checksum
	metadata    map[string]string // x-amz-meta-* without the prefix, lowercase
	headers     http.Header       // the s3StoredHeaders the writer sent
}

// s3Grant is an access grant of S3 Access Grants: grantee (an identity
// store user ID, or with group a group's name) reaches the keys of bucket
// that start with prefix.
type s3Grant struct {
	bucket  string
	prefix  string
	grantee string
	group   bool
	access  Access
}

// target is the grant scope as S3 Access Grants writes it:
// "s3://bucket/prefix*".
func (g s3Grant) target() string { return "s3://" + g.bucket + "/" + g.prefix + "*" }

func newS3Store(verifier *sigv4Verifier) *s3Store {
	return &s3Store{
		verifier:     verifier,
		locationRole: roleModel{name: locationRoleName, id: "AROA" + randomID(17), maxSession: dataAccessMaxDuration},
		buckets:      map[string]*s3Bucket{},
		groups:       map[string][]string{},
		scopes:       map[string]dataScope{},
	}
}

// newS3Object returns an object of body, with its ETag and its full-object
// checksum: check when the writer sent one, else CRC64NVME, as S3 computes
// for every new object.
func newS3Object(body []byte, contentType string, check s3Checksum, meta map[string]string, headers http.Header, now time.Time) *s3Object {
	sum := md5.Sum(body)
	if contentType == "" {
		contentType = "binary/octet-stream"
	}
	if check.algorithm == "" {
		check = s3Checksum{algorithm: "CRC64NVME", value: computeS3Checksum("CRC64NVME", body)}
	}
	return &s3Object{
		body:        body,
		etag:        `"` + hex.EncodeToString(sum[:]) + `"`,
		contentType: contentType,
		modified:    now.UTC().Truncate(time.Second),
		checksum:    check,
		metadata:    meta,
		headers:     headers,
	}
}

// checkBucketName refuses a name S3 would refuse for a general purpose
// bucket.
func checkBucketName(name string) error {
	if !bucketNamePattern.MatchString(name) || strings.Contains(name, "..") || net.ParseIP(name) != nil ||
		strings.HasPrefix(name, "xn--") || strings.HasSuffix(name, "-s3alias") || strings.HasSuffix(name, "--ol-s3") {
		return fmt.Errorf("tiptest: %q is not a valid S3 bucket name", name)
	}
	return nil
}

// checkKey refuses a key S3 would refuse: empty, longer than 1024 bytes or
// not UTF-8.
func checkKey(key string) error {
	if key == "" || len(key) > s3MaxKey || !utf8.ValidString(key) {
		return fmt.Errorf("tiptest: %q is not a valid S3 key (1 to %d bytes of UTF-8)", key, s3MaxKey)
	}
	return nil
}

// CreateBucket creates the bucket name in the account of the local AWS,
// in its region. Creating a bucket that exists does nothing, as S3 does for
// the bucket's owner in us-east-1. It fails on a name S3 would refuse.
func (a *AWS) CreateBucket(name string) error {
	if err := checkBucketName(name); err != nil {
		return err
	}
	s := a.s3
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.buckets[name] == nil {
		s.buckets[name] = &s3Bucket{objects: map[string]*s3Object{}}
	}
	return nil
}

// PutObject stores body (copied) as the object key of bucket, replacing
// any object of that key, as an S3 PutObject without a Content-Type would
// (its Content-Type is "binary/octet-stream"). It needs no grant: it is how
// tests seed data. It fails when the bucket does not exist or the key is
// not 1 to 1024 bytes of UTF-8.
func (a *AWS) PutObject(bucket, key string, body []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	obj := newS3Object(slices.Clone(body), "", s3Checksum{}, nil, nil, a.clock.Now())
	if !a.s3.store(bucket, key, obj) {
		return fmt.Errorf("tiptest: bucket %q does not exist", bucket)
	}
	return nil
}

// Object returns a copy of the object key of bucket, and whether it
// exists. It needs no grant: it is how tests check what was written.
func (a *AWS) Object(bucket, key string) ([]byte, bool) {
	obj, ok := a.s3.object(bucket, key)
	if !ok {
		return nil, false
	}
	return slices.Clone(obj.body), true
}

// Grant adds an S3 access grant: the Identity Center user may obtain,
// through S3 Control GetDataAccess, credentials that reach with access the
// keys of bucket that start with prefix (the grant scope
// "s3://bucket/prefix*"). As in AWS, where a DIRECTORY_USER grantee is the
// user's ID in the identity store, user is that ID (AWS.UserID: a GUID);
// a user's name (as UserFor reports it, the local part of the email
// claim) is accepted too and stands for the ID of that user.
// The prefix is matched as a plain string prefix, so end it with "/" to
// grant a folder; the empty prefix grants the whole bucket. Grants add up;
// there is no revocation. The bucket need not exist yet.
func (a *AWS) Grant(bucket, prefix, user string, access Access) {
	a.s3.grant(s3Grant{bucket: bucket, prefix: prefix, grantee: a.directoryUserID(user), access: access})
}

// GrantGroup is Grant for every member of the Identity Center group (see
// SetGroups).
func (a *AWS) GrantGroup(bucket, prefix, group string, access Access) {
	a.s3.grant(s3Grant{bucket: bucket, prefix: prefix, grantee: group, group: true, access: access})
}

// SetGroups makes groups the Identity Center groups of user (a user ID or
// a user's name, as for Grant), replacing the user's previous groups; no
// groups removes the user from every group. Group membership is looked up
// when GetDataAccess matches a grant: credentials it already vended keep
// their scope until they expire, as in AWS.
func (a *AWS) SetGroups(user string, groups ...string) {
	id := a.directoryUserID(user)
	s := a.s3
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(groups) == 0 {
		delete(s.groups, id)
		return
	}
	s.groups[id] = slices.Clone(groups)
}

func (s *s3Store) grant(g s3Grant) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grants = append(s.grants, g)
}

// store puts obj under key and reports whether the bucket exists.
func (s *s3Store) store(bucket, key string, obj *s3Object) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[bucket]
	if b == nil {
		return false
	}
	b.objects[key] = obj
	return true
}

// remove deletes the object key of bucket, if any, and reports whether
// the bucket exists.
func (s *s3Store) remove(bucket, key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[bucket]
	if b == nil {
		return false
	}
	delete(b.objects, key)
	return true
}

// object returns the object key of bucket.
func (s *s3Store) object(bucket, key string) (*s3Object, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[bucket]
	if b == nil {
		return nil, false
	}
	obj, ok := b.objects[key]
	return obj, ok
}

// bucketExists reports whether bucket exists.
func (s *s3Store) bucketExists(bucket string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buckets[bucket] != nil
}

// matchGrant returns the grant of the Identity Center user of ID userID,
// or of one of the user's groups, on bucket that gives need on the keys
// starting with prefix and is the closest to it (the longest grant
// prefix), as S3 Access Grants matches GetDataAccess. A READ grant never
// gives WRITE, and READWRITE needs a READWRITE grant.
func (s *s3Store) matchGrant(userID, bucket, prefix string, need Access) (s3Grant, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var best s3Grant
	found := false
	for _, g := range s.grantsOfLocked(userID) {
		if g.bucket != bucket || g.access&need != need || !strings.HasPrefix(prefix, g.prefix) {
			continue
		}
		if !found || len(g.prefix) > len(best.prefix) {
			best, found = g, true
		}
	}
	return best, found
}

// grantsOf returns the grants of the Identity Center user of ID userID
// and of the user's groups, in the order they were made.
func (s *s3Store) grantsOf(userID string) []s3Grant {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.grantsOfLocked(userID)
}

func (s *s3Store) grantsOfLocked(userID string) []s3Grant {
	groups := s.groups[userID]
	var out []s3Grant
	for _, g := range s.grants {
		if g.group && slices.Contains(groups, g.grantee) || !g.group && g.grantee == userID {
			out = append(out, g)
		}
	}
	return out
}

// setScope records the scope of the credentials of accessKeyID.
func (s *s3Store) setScope(accessKeyID string, sc dataScope) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scopes[accessKeyID] = sc
}

// scopeOf returns the scope of the credentials of accessKeyID, and whether
// GetDataAccess vended them.
func (s *s3Store) scopeOf(accessKeyID string) (dataScope, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc, ok := s.scopes[accessKeyID]
	return sc, ok
}

// permits reports whether caller may use need on key of bucket (for a
// listing, on the keys under the prefix key): only credentials vended by
// GetDataAccess reach objects, within their scope. Any other caller (the
// server user, a role session, an identity-enhanced session itself) is
// allowed nothing, as S3 does without a bucket policy that names it.
func (s *s3Store) permits(caller *principal, bucket, key string, need Access, listing bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc, ok := s.scopes[caller.accessKeyID]
	return ok && sc.covers(bucket, key, need, listing)
}
