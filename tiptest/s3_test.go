package tiptest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/s3control"
	s3ctypes "github.com/aws/aws-sdk-go-v2/service/s3control/types"

	"github.com/tipkit/tipkit/tiptest"
)

// s3Client returns an s3 client of env, path-style, signed with creds (the
// server user's when nil), without retries.
func s3Client(env *tiptest.Env, creds *aws.Credentials, optFns ...func(*s3.Options)) *s3.Client {
	opts := append([]func(*s3.Options){func(o *s3.Options) { o.UsePathStyle = true }}, optFns...)
	return s3.NewFromConfig(awsConfig(env, creds), opts...)
}

// s3UserCreds exchanges a token of user for identity-enhanced credentials
// of the access role, through CreateTokenWithIAM and AssumeRole.
func s3UserCreds(t *testing.T, env *tiptest.Env, user string) aws.Credentials {
	t.Helper()
	out, err := awsAssumeAccess(awsSTS(env, nil), env, 900, awsContexts(awsIdentityContext(t, env, user), 1))
	if err != nil {
		t.Fatalf("AssumeRole for %s: %v", user, err)
	}
	return awsCredsOf(out.Credentials)
}

// s3Control returns an s3control client of env signed with creds (the
// server user's when nil), without retries.
func s3Control(env *tiptest.Env, creds *aws.Credentials, optFns ...func(*s3control.Options)) *s3control.Client {
	return s3control.NewFromConfig(awsConfig(env, creds), optFns...)
}

// s3DataAccess calls GetDataAccess for target and perm with creds.
func s3DataAccess(env *tiptest.Env, creds *aws.Credentials, target string, perm s3ctypes.Permission,
	edit ...func(*s3control.GetDataAccessInput)) (*s3control.GetDataAccessOutput, error) {
	in := &s3control.GetDataAccessInput{
		AccountId: aws.String(env.AWS.AccountID()), Target: aws.String(target), Permission: perm,
	}
	for _, e := range edit {
		e(in)
	}
	return s3Control(env, creds).GetDataAccess(bg, in)
}

// s3Target is the S3 URI of prefix in env's bucket, as a grant target:
// "s3://tipkit-data/prefix*".
func s3Target(env *tiptest.Env, prefix string) string {
	return "s3://" + env.Bucket + "/" + prefix + "*"
}

// s3DataCreds returns the credentials GetDataAccess vends to an
// identity-enhanced session of user for target and perm.
func s3DataCreds(t *testing.T, env *tiptest.Env, user, target string, perm s3ctypes.Permission) aws.Credentials {
	t.Helper()
	creds := s3UserCreds(t, env, user)
	out, err := s3DataAccess(env, &creds, target, perm)
	if err != nil {
		t.Fatalf("GetDataAccess of %s for %s %s: %v", user, target, perm, err)
	}
	return aws.Credentials{
		AccessKeyID:     aws.ToString(out.Credentials.AccessKeyId),
		SecretAccessKey: aws.ToString(out.Credentials.SecretAccessKey),
		SessionToken:    aws.ToString(out.Credentials.SessionToken),
	}
}

// s3UserClient returns an s3 client signed with the credentials
// GetDataAccess vends to user for prefix of env's bucket and perm.
func s3UserClient(t *testing.T, env *tiptest.Env, user, prefix string, perm s3ctypes.Permission, optFns ...func(*s3.Options)) *s3.Client {
	t.Helper()
	creds := s3DataCreds(t, env, user, s3Target(env, prefix), perm)
	return s3Client(env, &creds, optFns...)
}

// s3Seed stores key = "content of KEY" for each key, failing t on error.
func s3Seed(t *testing.T, env *tiptest.Env, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if err := env.AWS.PutObject(env.Bucket, k, []byte("content of "+k)); err != nil {
			t.Fatal(err)
		}
	}
}

// s3List lists prefix with c and returns the keys and common prefixes.
func s3List(c *s3.Client, bucket, prefix, delimiter string) ([]string, error) {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)}
	if delimiter != "" {
		in.Delimiter = aws.String(delimiter)
	}
	var got []string
	p := s3.NewListObjectsV2Paginator(c, in)
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			return nil, err
		}
		for _, o := range page.Contents {
			got = append(got, aws.ToString(o.Key))
		}
		for _, cp := range page.CommonPrefixes {
			got = append(got, aws.ToString(cp.Prefix))
		}
	}
	return got, nil
}

// s3Get reads key with c.
func s3Get(c *s3.Client, bucket, key string) (string, error) {
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return "", err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	return string(b), err
}

// s3Put writes key = body with c.
func s3Put(c *s3.Client, bucket, key, body string) error {
	_, err := c.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body),
	})
	return err
}

var bg = context.Background()

// wantKeys fails t unless err is nil and got is want.
func wantKeys(t *testing.T, got []string, err error, want ...string) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("listed %q, want %q", got, want)
	}
}

const (
	permRead      = s3ctypes.PermissionRead
	permWrite     = s3ctypes.PermissionWrite
	permReadWrite = s3ctypes.PermissionReadwrite
)

func TestS3UsersSeeTheirOwnData(t *testing.T) {
	env := tiptest.New(t)
	s3Seed(t, env, "alice/notes.txt", "alice/2024/report.csv", "bob/plan.md", "shared/readme")
	env.AWS.Grant(env.Bucket, "alice/", "alice", tiptest.AccessReadWrite)
	env.AWS.Grant(env.Bucket, "bob/", "bob", tiptest.AccessReadWrite)
	aliceCreds := s3DataCreds(t, env, "alice", s3Target(env, "alice/"), permReadWrite)
	alice := s3Client(env, &aliceCreds)
	bob := s3UserClient(t, env, "bob", "bob/", permReadWrite)
	if u, ok := env.AWS.UserFor(aliceCreds.AccessKeyID); !ok || u != "alice" {
		t.Fatalf("UserFor = %q, %v", u, ok)
	}

	got, err := s3List(alice, env.Bucket, "alice/", "")
	wantKeys(t, got, err, "alice/2024/report.csv", "alice/notes.txt")
	got, err = s3List(bob, env.Bucket, "bob/", "")
	wantKeys(t, got, err, "bob/plan.md")
	got, err = s3List(alice, env.Bucket, "alice/", "/")
	wantKeys(t, got, err, "alice/notes.txt", "alice/2024/")
	got, err = s3List(alice, env.Bucket, "alice/2024/r", "")
	wantKeys(t, got, err, "alice/2024/report.csv")

	// Outside the scope of the credentials: another user's prefix, the
	// bucket root, a prefix that is not within "alice/".
	for _, prefix := range []string{"bob/", "", "alice", "shared/"} {
		_, err := s3List(alice, env.Bucket, prefix, "/")
		awsWantCode(t, err, "AccessDenied", http.StatusForbidden)
	}

	if body, err := s3Get(alice, env.Bucket, "alice/notes.txt"); err != nil || body != "content of alice/notes.txt" {
		t.Fatalf("alice reads her object: %q, %v", body, err)
	}
	_, err = s3Get(alice, env.Bucket, "bob/plan.md")
	awsWantCode(t, err, "AccessDenied", http.StatusForbidden)
	_, err = s3Get(bob, env.Bucket, "alice/notes.txt")
	awsWantCode(t, err, "AccessDenied", http.StatusForbidden)

	if err := s3Put(alice, env.Bucket, "alice/new.txt", "written by alice"); err != nil {
		t.Fatal(err)
	}
	if b, ok := env.AWS.Object(env.Bucket, "alice/new.txt"); !ok || string(b) != "written by alice" {
		t.Fatalf("Object = %q, %v", b, ok)
	}
	awsWantCode(t, s3Put(alice, env.Bucket, "bob/new.txt", "x"), "AccessDenied", http.StatusForbidden)
	awsWantCode(t, s3Put(alice, env.Bucket, "top.txt", "x"), "AccessDenied", http.StatusForbidden)
	if _, ok := env.AWS.Object(env.Bucket, "bob/new.txt"); ok {
		t.Fatal("a refused PutObject stored its object")
	}
	if n := env.AWS.Calls("PutObject"); n != 3 {
		t.Fatalf("Calls(PutObject) = %d, want 3", n)
	}
	if n := env.AWS.Calls("GetObject"); n != 3 {
		t.Fatalf("Calls(GetObject) = %d, want 3", n)
	}

	// S3 Access Grants refuses Alice data access to Bob's prefix and to the
	// bucket root.
	session := s3UserCreds(t, env, "alice")
	for _, target := range []string{s3Target(env, "bob/"), s3Target(env, ""), s3Target(env, "alice")} {
		_, err := s3DataAccess(env, &session, target, permRead)
		awsWantCode(t, err, "AccessDenied", http.StatusForbidden)
	}
	if n := env.AWS.Calls("GetDataAccess"); n != 5 {
		t.Fatalf("Calls(GetDataAccess) = %d, want 5", n)
	}
}

func TestS3AccessLevels(t *testing.T) {
	env := tiptest.New(t)
	s3Seed(t, env, "reports/q1.csv", "inbox/old")
	env.AWS.Grant(env.Bucket, "reports/", "carol", tiptest.AccessRead)
	env.AWS.Grant(env.Bucket, "inbox/", "carol", tiptest.AccessWrite)
	session := s3UserCreds(t, env, "carol")
	data := func(prefix string, perm s3ctypes.Permission) (*s3.Client, error) {
		out, err := s3DataAccess(env, &session, s3Target(env, prefix), perm)
		if err != nil {
			return nil, err
		}
		creds := aws.Credentials{AccessKeyID: aws.ToString(out.Credentials.AccessKeyId),
			SecretAccessKey: aws.ToString(out.Credentials.SecretAccessKey), SessionToken: aws.ToString(out.Credentials.SessionToken)}
		return s3Client(env, &creds), nil
	}

	reports, err := data("reports/", permRead)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s3Get(reports, env.Bucket, "reports/q1.csv"); err != nil {
		t.Fatal(err)
	}
	awsWantCode(t, s3Put(reports, env.Bucket, "reports/q2.csv", "x"), "AccessDenied", http.StatusForbidden)
	// A READ grant gives neither WRITE nor READWRITE.
	for _, perm := range []s3ctypes.Permission{permWrite, permReadWrite} {
		_, err := data("reports/", perm)
		awsWantCode(t, err, "AccessDenied", http.StatusForbidden)
	}

	inbox, err := data("inbox/", permWrite)
	if err != nil {
		t.Fatal(err)
	}
	if err := s3Put(inbox, env.Bucket, "inbox/new", "x"); err != nil {
		t.Fatal(err)
	}
	_, err = s3Get(inbox, env.Bucket, "inbox/old")
	awsWantCode(t, err, "AccessDenied", http.StatusForbidden)
	_, err = s3List(inbox, env.Bucket, "inbox/", "")
	awsWantCode(t, err, "AccessDenied", http.StatusForbidden)
	_, err = data("inbox/", permRead)
	awsWantCode(t, err, "AccessDenied", http.StatusForbidden)

	// Grants add up.
	env.AWS.Grant(env.Bucket, "inbox/", "carol", tiptest.AccessRead)
	inboxRead, err := data("inbox/", permRead)
	if err != nil {
		t.Fatal(err)
	}
	if body, err := s3Get(inboxRead, env.Bucket, "inbox/new"); err != nil || body != "x" {
		t.Fatalf("%q, %v", body, err)
	}

	// A grant of the whole bucket lets the root be listed.
	env.AWS.Grant(env.Bucket, "", "dan", tiptest.AccessRead)
	got, err := s3List(s3UserClient(t, env, "dan", "", permRead), env.Bucket, "", "/")
	wantKeys(t, got, err, "inbox/", "reports/")

	for a, want := range map[tiptest.Access]string{
		tiptest.AccessRead: "READ", tiptest.AccessWrite: "WRITE", tiptest.AccessReadWrite: "READWRITE", 7: "Access(7)",
	} {
		if a.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(a), a.String(), want)
		}
	}
}

func TestS3GroupGrant(t *testing.T) {
	env := tiptest.New(t)
	s3Seed(t, env, "finance/budget.xlsx", "hr/salaries.csv")
	env.AWS.GrantGroup(env.Bucket, "finance/", "finance", tiptest.AccessReadWrite)
	env.AWS.SetGroups("erin", "engineering", "finance")
	erinSession := s3UserCreds(t, env, "erin")
	out, err := s3DataAccess(env, &erinSession, s3Target(env, "finance/"), permReadWrite)
	if err != nil {
		t.Fatal(err)
	}
	if out.Grantee == nil || out.Grantee.GranteeType != s3ctypes.GranteeTypeDirectoryGroup || len(aws.ToString(out.Grantee.GranteeIdentifier)) != 36 ||
		aws.ToString(out.MatchedGrantTarget) != s3Target(env, "finance/") {
		t.Fatalf("GetDataAccess: grantee %+v, matched %q", out.Grantee, aws.ToString(out.MatchedGrantTarget))
	}
	erinCreds := aws.Credentials{AccessKeyID: aws.ToString(out.Credentials.AccessKeyId),
		SecretAccessKey: aws.ToString(out.Credentials.SecretAccessKey), SessionToken: aws.ToString(out.Credentials.SessionToken)}
	erin := s3Client(env, &erinCreds)

	got, err := s3List(erin, env.Bucket, "finance/", "")
	wantKeys(t, got, err, "finance/budget.xlsx")
	if err := s3Put(erin, env.Bucket, "finance/forecast.xlsx", "f"); err != nil {
		t.Fatal(err)
	}
	_, err = s3Get(erin, env.Bucket, "hr/salaries.csv")
	awsWantCode(t, err, "AccessDenied", http.StatusForbidden)
	frankSession := s3UserCreds(t, env, "frank")
	_, err = s3DataAccess(env, &frankSession, s3Target(env, "finance/"), permRead)
	awsWantCode(t, err, "AccessDenied", http.StatusForbidden)

	// Membership is looked up by GetDataAccess; credentials already vended
	// keep their scope until they expire.
	env.AWS.SetGroups("frank", "finance")
	if _, err := s3DataAccess(env, &frankSession, s3Target(env, "finance/"), permRead); err != nil {
		t.Fatal(err)
	}
	env.AWS.SetGroups("erin")
	_, err = s3DataAccess(env, &erinSession, s3Target(env, "finance/"), permRead)
	awsWantCode(t, err, "AccessDenied", http.StatusForbidden)
	if _, err := s3Get(erin, env.Bucket, "finance/budget.xlsx"); err != nil {
		t.Fatal(err)
	}

	// A group grant does not grant a user of the group's name.
	env.AWS.SetGroups("finance")
	financeSession := s3UserCreds(t, env, "finance")
	_, err = s3DataAccess(env, &financeSession, s3Target(env, "finance/"), permRead)
	awsWantCode(t, err, "AccessDenied", http.StatusForbidden)
}

func TestS3CredentialsWithoutDataAccessReachNothing(t *testing.T) {
	env := tiptest.New(t)
	s3Seed(t, env, "alice/notes.txt")
	env.AWS.Grant(env.Bucket, "", "alice", tiptest.AccessReadWrite)
	env.AWS.Grant(env.Bucket, "", "tipkit-server", tiptest.AccessReadWrite) // no user has that name

	app, err := awsWebIdentity(env, env.IdP.Token("alice"), 0)
	if err != nil {
		t.Fatal(err)
	}
	appCreds := awsCredsOf(app.Credentials)
	plain, err := awsAssumeAccess(awsSTS(env, nil), env, 900, nil)
	if err != nil {
		t.Fatal(err)
	}
	plainCreds := awsCredsOf(plain.Credentials)
	session := s3UserCreds(t, env, "alice")
	for name, creds := range map[string]*aws.Credentials{
		"server user":              nil,
		"application role session": &appCreds,
		"access role, no context":  &plainCreds,
		"identity-enhanced":        &session,
	} {
		t.Run(name, func(t *testing.T) {
			c := s3Client(env, creds)
			_, err := s3List(c, env.Bucket, "alice/", "")
			awsWantCode(t, err, "AccessDenied", http.StatusForbidden)
			_, err = s3Get(c, env.Bucket, "alice/notes.txt")
			awsWantCode(t, err, "AccessDenied", http.StatusForbidden)
			awsWantCode(t, s3Put(c, env.Bucket, "alice/x", "x"), "AccessDenied", http.StatusForbidden)
			_, err = c.HeadObject(bg, &s3.HeadObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String("alice/notes.txt")})
			awsWantCode(t, err, "Forbidden", http.StatusForbidden)
			if creds != &session {
				// Only an identity-enhanced session is vended data access.
				_, err = s3DataAccess(env, creds, s3Target(env, "alice/"), permRead)
				awsWantCode(t, err, "AccessDenied", http.StatusForbidden)
			}
		})
	}
}

func TestS3ExpiredCredentials(t *testing.T) {
	env := tiptest.New(t)
	s3Seed(t, env, "alice/notes.txt")
	env.AWS.Grant(env.Bucket, "alice/", "alice", tiptest.AccessReadWrite)
	session := s3UserCreds(t, env, "alice") // 900 s
	out, err := s3DataAccess(env, &session, s3Target(env, "alice/"), permReadWrite, func(in *s3control.GetDataAccessInput) {
		in.DurationSeconds = aws.Int32(1800)
	})
	if err != nil {
		t.Fatal(err)
	}
	creds := aws.Credentials{AccessKeyID: aws.ToString(out.Credentials.AccessKeyId),
		SecretAccessKey: aws.ToString(out.Credentials.SecretAccessKey), SessionToken: aws.ToString(out.Credentials.SessionToken)}
	alice := s3Client(env, &creds)
	if _, err := s3Get(alice, env.Bucket, "alice/notes.txt"); err != nil {
		t.Fatal(err)
	}
	// The identity-enhanced session expires first; the data credentials
	// live their own 1800 s.
	env.Clock.Advance(901 * time.Second)
	_, err = s3DataAccess(env, &session, s3Target(env, "alice/"), permRead)
	awsWantCode(t, err, "ExpiredToken", http.StatusBadRequest)
	if _, err := s3Get(alice, env.Bucket, "alice/notes.txt"); err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(900 * time.Second)
	_, err = s3Get(alice, env.Bucket, "alice/notes.txt")
	awsWantCode(t, err, "ExpiredToken", http.StatusBadRequest)
	_, err = s3List(alice, env.Bucket, "alice/", "")
	awsWantCode(t, err, "ExpiredToken", http.StatusBadRequest)
	awsWantCode(t, s3Put(alice, env.Bucket, "alice/x", "x"), "ExpiredToken", http.StatusBadRequest)
}

// rewriteBody is a transport that changes the body of PUT requests after
// they were signed: the same length, other bytes; with header set it also
// sends the SHA-256 of the new body as x-amz-content-sha256.
type rewriteBody struct {
	header bool
}

func (rw rewriteBody) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPut && r.Body != nil {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		tampered := bytes.ToUpper(b)
		r = r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(tampered))
		if rw.header {
			sum := sha256.Sum256(tampered)
			r.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestS3Tampering(t *testing.T) {
	env := tiptest.New(t)
	env.AWS.Grant(env.Bucket, "alice/", "alice", tiptest.AccessReadWrite)
	creds := s3DataCreds(t, env, "alice", s3Target(env, "alice/"), permReadWrite)
	with := func(rt http.RoundTripper) *s3.Client {
		return s3Client(env, &creds, func(o *s3.Options) { o.HTTPClient = &http.Client{Transport: rt} })
	}

	// The body no longer matches the signed payload hash.
	err := s3Put(with(rewriteBody{}), env.Bucket, "alice/a", "lowercase")
	awsWantCode(t, err, "XAmzContentSHA256Mismatch", http.StatusBadRequest)
	// The payload hash was changed too: the signature no longer matches.
	err = s3Put(with(rewriteBody{header: true}), env.Bucket, "alice/a", "lowercase")
	awsWantCode(t, err, "SignatureDoesNotMatch", http.StatusForbidden)
	if _, ok := env.AWS.Object(env.Bucket, "alice/a"); ok {
		t.Fatal("a tampered PutObject was stored")
	}

	// A checksum the client signed but that does not match the body.
	_, err = s3Client(env, &creds).PutObject(bg, &s3.PutObjectInput{
		Bucket: aws.String(env.Bucket), Key: aws.String("alice/a"), Body: strings.NewReader("body"),
		ChecksumCRC32: aws.String("AAAAAA=="),
	})
	awsWantCode(t, err, "BadDigest", http.StatusBadRequest)
	_, err = s3Client(env, &creds).PutObject(bg, &s3.PutObjectInput{
		Bucket: aws.String(env.Bucket), Key: aws.String("alice/a"), Body: strings.NewReader("body"),
		ContentMD5: aws.String(base64.StdEncoding.EncodeToString(make([]byte, 16))),
	})
	awsWantCode(t, err, "BadDigest", http.StatusBadRequest)

	// Wrong secret, unknown key, missing session token.
	wrong := creds
	wrong.SecretAccessKey = otherSecret(creds.SecretAccessKey)
	_, err = s3Get(s3Client(env, &wrong), env.Bucket, "alice/a")
	awsWantCode(t, err, "SignatureDoesNotMatch", http.StatusForbidden)
	unknown := creds
	unknown.AccessKeyID = "ASIAUNKNOWNUNKNOWN00"
	_, err = s3Get(s3Client(env, &unknown), env.Bucket, "alice/a")
	awsWantCode(t, err, "InvalidAccessKeyId", http.StatusForbidden)
	noToken := creds
	noToken.SessionToken = ""
	_, err = s3Get(s3Client(env, &noToken), env.Bucket, "alice/a")
	awsWantCode(t, err, "InvalidToken", http.StatusBadRequest)
}

func TestS3NotFound(t *testing.T) {
	env := tiptest.New(t)
	env.AWS.Grant(env.Bucket, "alice/", "alice", tiptest.AccessReadWrite)
	env.AWS.Grant("no-such-bucket", "", "alice", tiptest.AccessReadWrite)
	alice := s3UserClient(t, env, "alice", "alice/", permReadWrite)

	_, err := s3Get(alice, env.Bucket, "alice/missing")
	awsWantType[*s3types.NoSuchKey](t, err)
	awsWantCode(t, err, "NoSuchKey", http.StatusNotFound)
	_, err = alice.HeadObject(bg, &s3.HeadObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String("alice/missing")})
	awsWantType[*s3types.NotFound](t, err)

	_, err = s3List(alice, "no-such-bucket", "", "")
	awsWantType[*s3types.NoSuchBucket](t, err)
	_, err = s3Get(alice, "no-such-bucket", "k")
	awsWantCode(t, err, "NoSuchBucket", http.StatusNotFound)
	awsWantCode(t, s3Put(alice, "no-such-bucket", "k", "x"), "NoSuchBucket", http.StatusNotFound)

	// Without a grant, a missing key is AccessDenied: existence does not leak.
	_, err = s3Get(alice, env.Bucket, "bob/missing")
	awsWantCode(t, err, "AccessDenied", http.StatusForbidden)
}

func TestS3ListPagination(t *testing.T) {
	env := tiptest.New(t)
	var want []string
	for i := range 23 {
		want = append(want, fmt.Sprintf("alice/file-%02d", i))
	}
	s3Seed(t, env, want...)
	s3Seed(t, env, "alice/dir-a/1", "alice/dir-a/2", "alice/dir-b/1", "alice/dir-c/x/y", "alice0", "bob/x")
	env.AWS.Grant(env.Bucket, "alice/", "alice", tiptest.AccessRead)
	alice := s3UserClient(t, env, "alice", "alice/", permRead)

	// Plain pages of 5.
	var got []string
	pages := 0
	p := s3.NewListObjectsV2Paginator(alice, &s3.ListObjectsV2Input{
		Bucket: aws.String(env.Bucket), Prefix: aws.String("alice/file-"), MaxKeys: aws.Int32(5),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(bg)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if aws.ToInt32(page.KeyCount) != int32(len(page.Contents)) || aws.ToInt32(page.MaxKeys) != 5 {
			t.Fatalf("page %d: KeyCount %d, MaxKeys %d, %d objects", pages, aws.ToInt32(page.KeyCount),
				aws.ToInt32(page.MaxKeys), len(page.Contents))
		}
		if truncated := aws.ToBool(page.IsTruncated); truncated != (page.NextContinuationToken != nil) || truncated != (pages < 5) {
			t.Fatalf("page %d: IsTruncated %v, NextContinuationToken %v", pages, truncated, page.NextContinuationToken)
		}
		for _, o := range page.Contents {
			got = append(got, aws.ToString(o.Key))
			if aws.ToInt64(o.Size) != int64(len("content of ")+len(aws.ToString(o.Key))) || o.StorageClass != "STANDARD" ||
				len(aws.ToString(o.ETag)) != 34 || o.LastModified == nil {
				t.Fatalf("object %+v", o)
			}
		}
	}
	if pages != 5 || !slices.Equal(got, want) {
		t.Fatalf("%d pages, keys %q", pages, got)
	}

	// Pages of 2 with a delimiter: common prefixes count as keys and are
	// not repeated across pages.
	got = nil
	p = s3.NewListObjectsV2Paginator(alice, &s3.ListObjectsV2Input{
		Bucket: aws.String(env.Bucket), Prefix: aws.String("alice/dir-"), Delimiter: aws.String("/"), MaxKeys: aws.Int32(2),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(bg)
		if err != nil {
			t.Fatal(err)
		}
		for _, cp := range page.CommonPrefixes {
			got = append(got, aws.ToString(cp.Prefix))
		}
	}
	if !slices.Equal(got, []string{"alice/dir-a/", "alice/dir-b/", "alice/dir-c/"}) {
		t.Fatalf("common prefixes %q", got)
	}

	// StartAfter, and an empty listing.
	out, err := alice.ListObjectsV2(bg, &s3.ListObjectsV2Input{
		Bucket: aws.String(env.Bucket), Prefix: aws.String("alice/"), StartAfter: aws.String("alice/file-20"), Delimiter: aws.String("/"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Contents) != 2 || aws.ToString(out.Contents[0].Key) != "alice/file-21" || aws.ToString(out.StartAfter) != "alice/file-20" ||
		aws.ToString(out.Prefix) != "alice/" || aws.ToString(out.Delimiter) != "/" {
		t.Fatalf("StartAfter: %+v", out)
	}
	got, err = s3List(alice, env.Bucket, "alice/nothing-here/", "")
	wantKeys(t, got, err)

	// max-keys 0 answers nothing and is not truncated.
	out, err = alice.ListObjectsV2(bg, &s3.ListObjectsV2Input{Bucket: aws.String(env.Bucket), Prefix: aws.String("alice/"), MaxKeys: aws.Int32(0)})
	if err != nil || len(out.Contents) != 0 || aws.ToBool(out.IsTruncated) {
		t.Fatalf("max-keys 0: %+v %v", out, err)
	}

	// Bad parameters.
	_, err = alice.ListObjectsV2(bg, &s3.ListObjectsV2Input{
		Bucket: aws.String(env.Bucket), Prefix: aws.String("alice/"), ContinuationToken: aws.String("not a token"),
	})
	awsWantCode(t, err, "InvalidArgument", http.StatusBadRequest)
	_, err = alice.ListObjectsV2(bg, &s3.ListObjectsV2Input{Bucket: aws.String(env.Bucket), Prefix: aws.String("alice/"), MaxKeys: aws.Int32(-1)})
	awsWantCode(t, err, "InvalidArgument", http.StatusBadRequest)
}

func TestS3ListEncodingTypeURL(t *testing.T) {
	env := tiptest.New(t)
	s3Seed(t, env, "alice/a b/c+d.txt", "alice/é")
	env.AWS.Grant(env.Bucket, "alice/", "alice", tiptest.AccessRead)
	out, err := s3UserClient(t, env, "alice", "alice/", permRead).ListObjectsV2(bg, &s3.ListObjectsV2Input{
		Bucket: aws.String(env.Bucket), Prefix: aws.String("alice/"), EncodingType: s3types.EncodingTypeUrl,
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.EncodingType != s3types.EncodingTypeUrl || len(out.Contents) != 2 ||
		aws.ToString(out.Contents[0].Key) != "alice%2Fa+b%2Fc%2Bd.txt" || aws.ToString(out.Contents[1].Key) != "alice%2F%C3%A9" {
		t.Fatalf("%+v", out)
	}
}

func TestS3KeyEncoding(t *testing.T) {
	env := tiptest.New(t)
	env.AWS.Grant(env.Bucket, "u/", "alice", tiptest.AccessReadWrite)
	alice := s3UserClient(t, env, "alice", "u/", permReadWrite)
	keys := []string{
		"u/with space/and  two.txt",
		"u/ünïcödé/日本語/😀.txt",
		"u/a+b=c&d?e#f%g%20h",
		"u/slashes//double/./dot/../up",
		"u/reserved !$'()*,;:@[]~",
		"u/trailing/",
		"u/tab\there",
	}
	for _, k := range keys {
		if err := s3Put(alice, env.Bucket, k, "body of "+k); err != nil {
			t.Fatalf("PutObject %q: %v", k, err)
		}
		if b, ok := env.AWS.Object(env.Bucket, k); !ok || string(b) != "body of "+k {
			t.Fatalf("Object(%q) = %q, %v", k, b, ok)
		}
		if body, err := s3Get(alice, env.Bucket, k); err != nil || body != "body of "+k {
			t.Fatalf("GetObject %q: %q, %v", k, body, err)
		}
		got, err := s3List(alice, env.Bucket, k, "")
		wantKeys(t, got, err, k)
	}
	got, err := s3List(alice, env.Bucket, "u/ünïcödé/", "/")
	wantKeys(t, got, err, "u/ünïcödé/日本語/")
}

// s3Raw signs and sends a request to the local S3 with the SDK signer, as
// the s3 client does (the path is not escaped twice), and returns the
// status, the error code and the body.
func s3Raw(t *testing.T, env *tiptest.Env, creds aws.Credentials, method, path, payloadHash string, body []byte,
	edit func(*http.Request)) (int, string, []byte) {
	t.Helper()
	r, err := http.NewRequest(method, env.AWS.URL()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if payloadHash != "" {
		r.Header.Set("X-Amz-Content-Sha256", payloadHash)
	}
	if edit != nil {
		edit(r)
	}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err := signer.SignHTTP(context.Background(), creds, r, payloadHash, "s3", env.AWS.Region(), time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var doc struct {
		XMLName   xml.Name `xml:"Error"`
		Code      string   `xml:"Code"`
		Message   string   `xml:"Message"`
		RequestID string   `xml:"RequestId"`
	}
	if resp.StatusCode >= 300 && method != http.MethodHead {
		if err := xml.Unmarshal(b, &doc); err != nil || doc.Message == "" || doc.RequestID != resp.Header.Get("X-Amz-Request-Id") {
			t.Fatalf("S3 error body %s: %v", b, err)
		}
	}
	return resp.StatusCode, doc.Code, b
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func TestS3Wire(t *testing.T) {
	env := tiptest.New(t)
	s3Seed(t, env, "alice/k")
	env.AWS.Grant(env.Bucket, "alice/", "alice", tiptest.AccessReadWrite)
	creds := s3DataCreds(t, env, "alice", s3Target(env, "alice/"), permReadWrite)
	empty := sha256Hex(nil)
	path := "/" + env.Bucket + "/alice/k"

	cases := []struct {
		name, method, path, hash string
		body                     []byte
		edit                     func(*http.Request)
		status                   int
		code                     string
	}{
		{"signed GET", "GET", path, empty, nil, nil, 200, ""},
		{"no payload hash", "GET", path, "", nil, nil, 400, "InvalidRequest"},
		{"unsigned payload", "GET", path, "UNSIGNED-PAYLOAD", nil, nil, 501, "NotImplemented"},
		{"streaming payload", "PUT", path, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", []byte("x"), nil, 501, "NotImplemented"},
		{"bad payload hash", "GET", path, "abc", nil, nil, 400, "InvalidArgument"},
		{"wrong payload hash", "GET", path, sha256Hex([]byte("x")), nil, nil, 400, "XAmzContentSHA256Mismatch"},
		{"PUT", "PUT", path, sha256Hex([]byte("new")), []byte("new"), nil, 200, ""},
		{"PUT two checksums", "PUT", path, sha256Hex([]byte("new")), []byte("new"), func(r *http.Request) {
			r.Header.Set("X-Amz-Checksum-Crc32", "AAAAAA==")
			r.Header.Set("X-Amz-Checksum-Sha1", "AAAAAA==")
		}, 400, "InvalidRequest"},
		{"PUT bad Content-MD5", "PUT", path, sha256Hex([]byte("new")), []byte("new"), func(r *http.Request) {
			r.Header.Set("Content-Md5", "nope")
		}, 400, "InvalidDigest"},
		{"DeleteObject of a missing key", "DELETE", path + "-missing?x-id=DeleteObject", empty, nil, nil, 204, ""},
		{"UploadPartCopy", "PUT", path + "?partNumber=1&uploadId=u", empty, nil, func(r *http.Request) {
			r.Header.Set("X-Amz-Copy-Source", "/"+env.Bucket+"/alice/k")
		}, 501, "NotImplemented"},
		{"GetObjectAcl", "GET", path + "?acl", empty, nil, nil, 501, "NotImplemented"},
		{"ListObjects v1", "GET", "/" + env.Bucket, empty, nil, nil, 501, "NotImplemented"},
		{"ListBuckets", "GET", "/", empty, nil, nil, 501, "NotImplemented"},
		{"conditional GET", "GET", path, empty, nil, func(r *http.Request) { r.Header.Set("If-None-Match", "*") }, 501, "NotImplemented"},
		{"expected owner", "GET", path, empty, nil, func(r *http.Request) {
			r.Header.Set("X-Amz-Expected-Bucket-Owner", "111111111111")
		}, 403, "AccessDenied"},
		{"range", "GET", path, empty, nil, func(r *http.Request) { r.Header.Set("Range", "bytes=1-2") }, 206, ""},
		{"range unsatisfiable", "GET", path, empty, nil, func(r *http.Request) { r.Header.Set("Range", "bytes=99-") }, 416, "InvalidRange"},
		{"HEAD", "HEAD", path, empty, nil, nil, 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, code, _ := s3Raw(t, env, creds, c.method, c.path, c.hash, c.body, c.edit)
			if status != c.status || code != c.code {
				t.Fatalf("%d %s, want %d %s", status, code, c.status, c.code)
			}
		})
	}
	if env.AWS.Calls("DeleteObject") != 1 || env.AWS.Calls("ListObjects") != 1 {
		t.Fatalf("Calls(DeleteObject) = %d, Calls(ListObjects) = %d", env.AWS.Calls("DeleteObject"), env.AWS.Calls("ListObjects"))
	}

	// Anonymous and presigned requests.
	resp, err := http.Get(env.AWS.URL() + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("anonymous GET: %d", resp.StatusCode)
	}
	presigned, err := s3.NewPresignClient(s3Client(env, &creds)).PresignGetObject(bg, &s3.GetObjectInput{
		Bucket: aws.String(env.Bucket), Key: aws.String("alice/k"),
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(presigned.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotImplemented {
		t.Fatalf("presigned GET: %d", resp.StatusCode)
	}

	// Wrong region, and a request signed too long ago.
	other := s3Client(env, &creds, func(o *s3.Options) { o.Region = "eu-west-1" })
	_, err = s3Get(other, env.Bucket, "alice/k")
	awsWantCode(t, err, "AuthorizationHeaderMalformed", http.StatusBadRequest)
	r, _ := http.NewRequest(http.MethodGet, env.AWS.URL()+path, nil)
	r.Header.Set("X-Amz-Content-Sha256", empty)
	if err := v4.NewSigner().SignHTTP(bg, creds, r, empty, "s3", env.AWS.Region(), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if status, code := sigDoS3(t, r); status != http.StatusForbidden || code != "RequestTimeTooSkewed" {
		t.Fatalf("skewed: %d %s", status, code)
	}
}

// sigDoS3 sends r and returns the status and the S3 error code.
func sigDoS3(t *testing.T, r *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Code string `xml:"Code"`
	}
	b, _ := io.ReadAll(resp.Body)
	_ = xml.Unmarshal(b, &doc)
	return resp.StatusCode, doc.Code
}

func TestS3ObjectAttributes(t *testing.T) {
	env := tiptest.New(t)
	env.AWS.Grant(env.Bucket, "alice/", "alice", tiptest.AccessReadWrite)
	alice := s3UserClient(t, env, "alice", "alice/", permReadWrite)

	// The check value of CRC-64/NVME ("123456789") is 0xae8b14860a799888;
	// S3 gives seeded objects that checksum, and the client validates it.
	if err := env.AWS.PutObject(env.Bucket, "alice/check", []byte("123456789")); err != nil {
		t.Fatal(err)
	}
	out, err := alice.GetObject(bg, &s3.GetObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String("alice/check")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(out.Body)
	out.Body.Close()
	want := base64.StdEncoding.EncodeToString([]byte{0xae, 0x8b, 0x14, 0x86, 0x0a, 0x79, 0x98, 0x88})
	if err != nil || string(b) != "123456789" || aws.ToString(out.ChecksumCRC64NVME) != want ||
		aws.ToString(out.ContentType) != "binary/octet-stream" || aws.ToString(out.ETag) != `"25f9e794323b453885f5181f1b624d0b"` {
		t.Fatalf("GetObject: %q %v, checksum %q, type %q, etag %q", b, err, aws.ToString(out.ChecksumCRC64NVME),
			aws.ToString(out.ContentType), aws.ToString(out.ETag))
	}

	// PutObject sends a CRC32 (checksums WhenSupported), which is kept.
	put, err := alice.PutObject(bg, &s3.PutObjectInput{
		Bucket: aws.String(env.Bucket), Key: aws.String("alice/doc.json"), Body: strings.NewReader(`{"a":1}`),
		ContentType: aws.String("application/json"), Metadata: map[string]string{"Owner": "alice"},
		CacheControl: aws.String("max-age=60"), ContentDisposition: aws.String(`attachment; filename="doc.json"`),
		StorageClass: s3types.StorageClassStandard,
	})
	if err != nil || put.ChecksumCRC32 == nil || aws.ToString(put.ETag) == "" {
		t.Fatalf("PutObject: %+v %v", put, err)
	}
	head, err := alice.HeadObject(bg, &s3.HeadObjectInput{
		Bucket: aws.String(env.Bucket), Key: aws.String("alice/doc.json"), ChecksumMode: s3types.ChecksumModeEnabled,
	})
	if err != nil || aws.ToString(head.ContentType) != "application/json" || aws.ToInt64(head.ContentLength) != 7 ||
		head.Metadata["owner"] != "alice" || aws.ToString(head.ChecksumCRC32) != aws.ToString(put.ChecksumCRC32) ||
		aws.ToString(head.ETag) != aws.ToString(put.ETag) || head.LastModified == nil ||
		aws.ToString(head.CacheControl) != "max-age=60" || aws.ToString(head.ContentDisposition) != `attachment; filename="doc.json"` {
		t.Fatalf("HeadObject: %+v %v", head, err)
	}

	// Response header overrides.
	out, err = alice.GetObject(bg, &s3.GetObjectInput{
		Bucket: aws.String(env.Bucket), Key: aws.String("alice/doc.json"), ResponseContentType: aws.String("text/plain"),
	})
	if err != nil {
		t.Fatal(err)
	}
	out.Body.Close()
	if aws.ToString(out.ContentType) != "text/plain" {
		t.Fatalf("response-content-type: %q", aws.ToString(out.ContentType))
	}

	// A byte range.
	out, err = alice.GetObject(bg, &s3.GetObjectInput{
		Bucket: aws.String(env.Bucket), Key: aws.String("alice/check"), Range: aws.String("bytes=-3"),
	})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(out.Body)
	out.Body.Close()
	if string(b) != "789" || aws.ToString(out.ContentRange) != "bytes 6-8/9" {
		t.Fatalf("range: %q %q", b, aws.ToString(out.ContentRange))
	}
}

func TestS3BucketNamedToken(t *testing.T) {
	env := tiptest.New(t)
	if err := env.AWS.CreateBucket("token"); err != nil {
		t.Fatal(err)
	}
	env.AWS.Grant("token", "", "alice", tiptest.AccessReadWrite)
	creds := s3DataCreds(t, env, "alice", "s3://token/*", permReadWrite)
	alice := s3Client(env, &creds)
	if err := s3Put(alice, "token", "k", "v"); err != nil {
		t.Fatal(err)
	}
	got, err := s3List(alice, "token", "", "")
	wantKeys(t, got, err, "k")
	if env.AWS.Calls("CreateTokenWithIAM") != 1 || env.AWS.Calls("ListObjectsV2") != 1 {
		t.Fatalf("CreateTokenWithIAM %d, ListObjectsV2 %d", env.AWS.Calls("CreateTokenWithIAM"), env.AWS.Calls("ListObjectsV2"))
	}
}

func TestS3Faults(t *testing.T) {
	env := tiptest.New(t)
	s3Seed(t, env, "alice/k")
	env.AWS.Grant(env.Bucket, "alice/", "alice", tiptest.AccessReadWrite)
	creds := s3DataCreds(t, env, "alice", s3Target(env, "alice/"), permReadWrite)
	retrying := s3.NewFromConfig(env.Config(), func(o *s3.Options) {
		o.UsePathStyle = true
		o.Credentials = awsStaticCreds(creds)
	})

	env.AWS.SetFault("GetObject", tiptest.Fault{Code: "SlowDown", Times: 1})
	if _, err := s3Get(retrying, env.Bucket, "alice/k"); err != nil {
		t.Fatal(err)
	}
	if n := env.AWS.Calls("GetObject"); n != 2 {
		t.Fatalf("Calls(GetObject) = %d, want 2 (one SlowDown, one retry)", n)
	}
	env.AWS.SetFault("ListObjectsV2", tiptest.Fault{Code: "AccessDenied"})
	_, err := s3List(retrying, env.Bucket, "alice/", "")
	awsWantCode(t, err, "AccessDenied", http.StatusForbidden)
	env.AWS.SetFault("PutObject", tiptest.Fault{Code: "InternalError"})
	awsWantCode(t, s3Put(s3Client(env, &creds), env.Bucket, "alice/x", "x"), "InternalError", http.StatusInternalServerError)
	env.AWS.ClearFaults()
	if err := s3Put(retrying, env.Bucket, "alice/x", "x"); err != nil {
		t.Fatal(err)
	}
}

func TestS3EnvAPI(t *testing.T) {
	env := tiptest.New(t)
	if env.Bucket != tiptest.DefaultBucket || tiptest.DefaultBucket != "tipkit-data" {
		t.Fatalf("Bucket %q", env.Bucket)
	}
	for _, bad := range []string{"", "ab", "UPPER", "under_score", "-dash", "dot.", "a..b", "192.168.1.1", strings.Repeat("a", 64), "xn--abc", "b-s3alias"} {
		if err := env.AWS.CreateBucket(bad); err == nil {
			t.Errorf("CreateBucket(%q) accepted", bad)
		}
	}
	if err := env.AWS.CreateBucket(env.Bucket); err != nil {
		t.Fatalf("CreateBucket of an existing bucket: %v", err)
	}
	if err := env.AWS.PutObject("missing-bucket", "k", nil); err == nil {
		t.Fatal("PutObject into a missing bucket succeeded")
	}
	for _, bad := range []string{"", strings.Repeat("k", 1025), "\xff"} {
		if err := env.AWS.PutObject(env.Bucket, bad, nil); err == nil {
			t.Errorf("PutObject(%q) accepted", bad)
		}
	}
	body := []byte("original")
	if err := env.AWS.PutObject(env.Bucket, "k", body); err != nil {
		t.Fatal(err)
	}
	body[0] = 'X'
	got, ok := env.AWS.Object(env.Bucket, "k")
	if !ok || string(got) != "original" {
		t.Fatalf("Object = %q, %v", got, ok)
	}
	got[0] = 'Y'
	if again, _ := env.AWS.Object(env.Bucket, "k"); string(again) != "original" {
		t.Fatalf("Object returned the stored slice")
	}
	if _, ok := env.AWS.Object(env.Bucket, "missing"); ok {
		t.Fatal("Object of a missing key")
	}
	if _, ok := env.AWS.Object("missing-bucket", "k"); ok {
		t.Fatal("Object of a missing bucket")
	}
}

func TestS3Concurrent(t *testing.T) {
	env := tiptest.New(t)
	users := []string{"u1", "u2", "u3", "u4"}
	clients := map[string]*s3.Client{}
	for _, u := range users {
		env.AWS.Grant(env.Bucket, u+"/", u, tiptest.AccessReadWrite)
		clients[u] = s3UserClient(t, env, u, u+"/", permReadWrite)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(users)*10)
	for _, u := range users {
		for i := range 10 {
			wg.Go(func() {
				key := fmt.Sprintf("%s/%d", u, i)
				if err := s3Put(clients[u], env.Bucket, key, key); err != nil {
					errs <- err
					return
				}
				if body, err := s3Get(clients[u], env.Bucket, key); err != nil || body != key {
					errs <- fmt.Errorf("%s: %q %v", key, body, err)
				}
				if _, err := s3List(clients[u], env.Bucket, u+"/", ""); err != nil {
					errs <- err
				}
				env.AWS.SetGroups(u, "g")
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, u := range users {
		got, err := s3List(clients[u], env.Bucket, u+"/", "")
		if err != nil || len(got) != 10 {
			t.Fatalf("%s lists %q, %v", u, got, err)
		}
	}
}

// otherSecret returns secret with its first byte changed: a secret that
// already starts with "x" must not come back unchanged.
func otherSecret(secret string) string {
	if strings.HasPrefix(secret, "x") {
		return "y" + secret[1:]
	}
	return "x" + secret[1:]
}
