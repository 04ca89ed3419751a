package accessgrants_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/s3control"
	"github.com/aws/aws-sdk-go-v2/service/s3control/types"
	"github.com/aws/smithy-go"

	"github.com/tipkit/tipkit/accessgrants"
	"github.com/tipkit/tipkit/tiptest"
)

// base is the configuration of env's S3 for S3Client, with credentials
// that the local AWS does not know: an operation signed with them would
// fail with InvalidAccessKeyId.
func base(env *tiptest.Env) aws.Config {
	cfg := env.Config()
	cfg.Credentials = credentials.NewStaticCredentialsProvider("AKIAIOSFODNN7INVALID", "not-a-secret-of-the-local-aws", "")
	return cfg
}

// pathStyle addresses tiptest's S3 by path.
func pathStyle(o *s3.Options) { o.UsePathStyle = true }

// s3Read reads key with c as the caller of ctx.
func s3Read(ctx context.Context, c *s3.Client, bucket, key string) (string, error) {
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return "", err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	return string(b), err
}

// s3Keys lists prefix with c as the caller of ctx.
func s3Keys(ctx context.Context, c *s3.Client, bucket, prefix string) ([]string, error) {
	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys, nil
}

// wantDenied fails t unless err matches ErrDenied.
func wantDenied(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, accessgrants.ErrDenied) {
		t.Fatalf("%s: %v, want an error matching ErrDenied", what, err)
	}
}

// Ten users, one shared client: alice READ on alice/, bob READWRITE on
// bob/, eight more READ on their own prefix.
func TestS3ClientTenUsers(t *testing.T) {
	f := newFixture(t)
	env := f.env
	users := []string{"alice", "bob"}
	for i := range 8 {
		users = append(users, fmt.Sprintf("user%d", i))
	}
	ctxs := map[string]context.Context{}
	for _, u := range users {
		access := tiptest.AccessRead
		if u == "bob" {
			access = tiptest.AccessReadWrite
		}
		env.AWS.Grant(env.Bucket, u+"/", env.AWS.UserID(u), access)
		for i := range 5 {
			key := fmt.Sprintf("%s/file%d.txt", u, i)
			if err := env.AWS.PutObject(env.Bucket, key, []byte("data of "+key)); err != nil {
				t.Fatal(err)
			}
		}
		ctxs[u] = f.as(t, u)
	}
	client := f.grants.S3Client(base(env), pathStyle)

	// 10 users × 5 concurrent GETs of their own objects, while each
	// GetDataAccess takes a while: each answered with its own data, one
	// GetDataAccess per user.
	env.AWS.SetFault("GetDataAccess", tiptest.Fault{Latency: 100 * time.Millisecond})
	var wg sync.WaitGroup
	for _, u := range users {
		for i := range 5 {
			wg.Go(func() {
				key := fmt.Sprintf("%s/file%d.txt", u, i)
				got, err := s3Read(ctxs[u], client, env.Bucket, key)
				if err != nil || got != "data of "+key {
					t.Errorf("%s read %s: %q, %v", u, key, got, err)
				}
			})
		}
	}
	wg.Wait()
	env.AWS.ClearFaults()
	f.calls(t, 10)
	if n := env.AWS.Calls("GetObject"); n != 50 {
		t.Fatalf("Calls(GetObject) = %d, want 50", n)
	}

	alice, bob := ctxs["alice"], ctxs["bob"]
	// alice's HeadObject and ListObjectsV2 on her prefix: allowed, with
	// the credentials already held.
	if _, err := client.HeadObject(alice, &s3.HeadObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String("alice/file0.txt")}); err != nil {
		t.Fatal(err)
	}
	keys, err := s3Keys(alice, client, env.Bucket, "alice/")
	if err != nil || len(keys) != 5 || keys[0] != "alice/file0.txt" {
		t.Fatalf("alice's listing: %q, %v", keys, err)
	}
	f.calls(t, 10)
	// ...on bob's: refused by S3 Access Grants.
	_, err = client.HeadObject(alice, &s3.HeadObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String("bob/file0.txt")})
	wantDenied(t, "alice's HeadObject of bob's object", err)
	_, err = s3Keys(alice, client, env.Bucket, "bob/")
	wantDenied(t, "alice's listing of bob/", err)

	// alice's PutObject and DeleteObject (READ grant): refused, nothing
	// written or deleted, nothing sent to S3.
	puts, deletes := env.AWS.Calls("PutObject"), env.AWS.Calls("DeleteObject")
	_, err = client.PutObject(alice, &s3.PutObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String("alice/new.txt"), Body: strings.NewReader("x")})
	wantDenied(t, "alice's PutObject", err)
	_, err = client.DeleteObject(alice, &s3.DeleteObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String("alice/file0.txt")})
	wantDenied(t, "alice's DeleteObject", err)
	if _, ok := env.AWS.Object(env.Bucket, "alice/new.txt"); ok {
		t.Fatal("alice's refused PutObject wrote")
	}
	if _, ok := env.AWS.Object(env.Bucket, "alice/file0.txt"); !ok {
		t.Fatal("alice's refused DeleteObject deleted")
	}
	if env.AWS.Calls("PutObject") != puts || env.AWS.Calls("DeleteObject") != deletes {
		t.Fatal("a refused operation was sent to S3")
	}

	// bob's PutObject, CopyObject within his prefix and DeleteObject: done,
	// as S3 shows.
	_, err = client.PutObject(bob, &s3.PutObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String("bob/new.txt"), Body: strings.NewReader("bob's new")})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := env.AWS.Object(env.Bucket, "bob/new.txt"); string(got) != "bob's new" {
		t.Fatalf("bob/new.txt holds %q", got)
	}
	_, err = client.CopyObject(bob, &s3.CopyObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String("bob/copy.txt"), CopySource: aws.String(env.Bucket + "/bob/new.txt")})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := env.AWS.Object(env.Bucket, "bob/copy.txt"); string(got) != "bob's new" {
		t.Fatalf("bob/copy.txt holds %q", got)
	}
	if _, err := client.DeleteObject(bob, &s3.DeleteObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String("bob/new.txt")}); err != nil {
		t.Fatal(err)
	}
	if _, ok := env.AWS.Object(env.Bucket, "bob/new.txt"); ok {
		t.Fatal("bob/new.txt is still there")
	}

	// alice's CopyObject of bob's object into her prefix: refused.
	copies := env.AWS.Calls("CopyObject")
	_, err = client.CopyObject(alice, &s3.CopyObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String("alice/stolen.txt"), CopySource: aws.String(env.Bucket + "/bob/file0.txt")})
	wantDenied(t, "alice's copy of bob's object", err)
	if _, ok := env.AWS.Object(env.Bucket, "alice/stolen.txt"); ok || env.AWS.Calls("CopyObject") != copies {
		t.Fatal("alice's refused copy was sent")
	}

	// A context without a caller: ErrNoCaller before any call.
	calls, gets := env.AWS.Calls("GetDataAccess"), env.AWS.Calls("GetObject")
	_, err = s3Read(context.Background(), client, env.Bucket, "alice/file0.txt")
	if !errors.Is(err, accessgrants.ErrNoCaller) {
		t.Fatalf("no caller: %v, want ErrNoCaller", err)
	}
	if env.AWS.Calls("GetDataAccess") != calls || env.AWS.Calls("GetObject") != gets {
		t.Fatal("an operation without a caller made a call")
	}
}

// Two users racing on one client, many times each, each get their own
// data: the client never holds one user's credentials for another, and
// never uses the base configuration's.
func TestS3ClientUsersRacing(t *testing.T) {
	f := newFixture(t)
	env := f.env
	for _, u := range []string{"alice", "bob"} {
		env.AWS.Grant(env.Bucket, u+"/", env.AWS.UserID(u), tiptest.AccessRead)
		if err := env.AWS.PutObject(env.Bucket, u+"/data", []byte(u+"'s data")); err != nil {
			t.Fatal(err)
		}
	}
	ctxs := map[string]context.Context{"alice": f.as(t, "alice"), "bob": f.as(t, "bob")}
	client := f.grants.S3Client(base(env), pathStyle)
	env.AWS.SetFault("GetDataAccess", tiptest.Fault{Latency: 50 * time.Millisecond})
	var wg sync.WaitGroup
	for i := range 200 {
		u := []string{"alice", "bob"}[i%2]
		wg.Go(func() {
			got, err := s3Read(ctxs[u], client, env.Bucket, u+"/data")
			if err != nil || got != u+"'s data" {
				t.Errorf("%s read %q, %v", u, got, err)
			}
			// The other user's object is refused, whatever the other
			// requests under way.
			other := map[string]string{"alice": "bob", "bob": "alice"}[u]
			if _, err := s3Read(ctxs[u], client, env.Bucket, other+"/data"); !errors.Is(err, accessgrants.ErrDenied) {
				t.Errorf("%s read %s's data: %v", u, other, err)
			}
		})
	}
	wg.Wait()
	if n := env.AWS.Calls("GetObject"); n != 200 {
		t.Fatalf("Calls(GetObject) = %d, want 200: every read sent once, none refused by S3", n)
	}
}

// recorder is the real S3 Control client of a local AWS, remembering
// each GetDataAccess request.
type recorder struct {
	next *s3control.Client
	mu   sync.Mutex
	seen []string
}

func (r *recorder) GetDataAccess(ctx context.Context, in *s3control.GetDataAccessInput, optFns ...func(*s3control.Options)) (*s3control.GetDataAccessOutput, error) {
	r.mu.Lock()
	r.seen = append(r.seen, fmt.Sprintf("%s %s %s", in.Permission, aws.ToString(in.Target), in.TargetType))
	r.mu.Unlock()
	return r.next.GetDataAccess(ctx, in, optFns...)
}

// take returns the requests seen since the last take.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := r.seen
	r.seen = nil
	return seen
}

// Each operation asks S3 Access Grants for its permission on its target,
// and is signed with what it vends: tiptest's S3 authenticates every
// request before anything else, so its NotImplemented for the operations
// it does not serve says the signature was of known credentials (the base
// configuration's would be InvalidAccessKeyId).
func TestS3ClientOperationMapping(t *testing.T) {
	f := newFixture(t)
	env := f.env
	env.AWS.Grant(env.Bucket, "u/", env.AWS.UserID("alice"), tiptest.AccessReadWrite)
	for _, k := range []string{"u/a", "u/x/1", "u/x/2"} {
		if err := env.AWS.PutObject(env.Bucket, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	ctx := f.as(t, "alice")
	b := aws.String(env.Bucket)
	key := aws.String("u/a")
	obj := func(perm, key string) string { return perm + " s3://" + env.Bucket + "/" + key + " Object" }
	pre := func(perm, prefix string) string { return perm + " s3://" + env.Bucket + "/" + prefix + "* " }
	cases := []struct {
		op   string
		call func(*s3.Client) error
		want []string
		code string // S3's answer; "" for success
	}{
		{"GetObject", func(c *s3.Client) error { _, err := s3Read(ctx, c, env.Bucket, "u/a"); return err }, []string{obj("READ", "u/a")}, ""},
		{"HeadObject", func(c *s3.Client) error {
			_, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: key})
			return err
		}, []string{obj("READ", "u/a")}, ""},
		{"GetObjectAttributes", func(c *s3.Client) error {
			_, err := c.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: b, Key: key, ObjectAttributes: []s3types.ObjectAttributes{s3types.ObjectAttributesEtag}})
			return err
		}, []string{obj("READ", "u/a")}, "NotImplemented"},
		{"GetObjectTagging", func(c *s3.Client) error {
			_, err := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: b, Key: key})
			return err
		}, []string{obj("READ", "u/a")}, "NotImplemented"},
		{"ListObjectsV2", func(c *s3.Client) error { _, err := s3Keys(ctx, c, env.Bucket, "u/"); return err }, []string{pre("READ", "u/")}, ""},
		{"ListObjects", func(c *s3.Client) error {
			_, err := c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: b, Prefix: aws.String("u/")})
			return err
		}, []string{pre("READ", "u/")}, "NotImplemented"},
		{"ListMultipartUploads", func(c *s3.Client) error {
			_, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: b, Prefix: aws.String("u/")})
			return err
		}, []string{pre("READ", "u/")}, "NotImplemented"},
		{"PutObject", func(c *s3.Client) error {
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("u/p"), Body: strings.NewReader("p")})
			return err
		}, []string{obj("WRITE", "u/p")}, ""},
		{"DeleteObject", func(c *s3.Client) error {
			_, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b, Key: aws.String("u/p")})
			return err
		}, []string{obj("WRITE", "u/p")}, ""},
		{"CreateMultipartUpload", func(c *s3.Client) error {
			_, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: key})
			return err
		}, []string{obj("WRITE", "u/a")}, "NotImplemented"},
		{"UploadPart", func(c *s3.Client) error {
			_, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: key, UploadId: aws.String("up"), PartNumber: aws.Int32(1), Body: strings.NewReader("part")})
			return err
		}, []string{obj("WRITE", "u/a")}, "NotImplemented"},
		{"CompleteMultipartUpload", func(c *s3.Client) error {
			_, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: key, UploadId: aws.String("up")})
			return err
		}, []string{obj("WRITE", "u/a")}, "NotImplemented"},
		{"AbortMultipartUpload", func(c *s3.Client) error {
			_, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: b, Key: key, UploadId: aws.String("up")})
			return err
		}, []string{obj("WRITE", "u/a")}, "NotImplemented"},
		{"ListParts", func(c *s3.Client) error {
			_, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: b, Key: key, UploadId: aws.String("up")})
			return err
		}, []string{obj("WRITE", "u/a")}, "NotImplemented"},
		{"DeleteObjects", func(c *s3.Client) error {
			_, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: b, Delete: &s3types.Delete{Objects: []s3types.ObjectIdentifier{
				{Key: aws.String("u/x/1")}, {Key: aws.String("u/x/2")},
			}}})
			return err
		}, []string{pre("WRITE", "u/x/")}, ""},
		// The source's READ and the destination's WRITE, of one grant:
		// READWRITE on the destination signs the copy.
		{"CopyObject", func(c *s3.Client) error {
			_, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("u/c"), CopySource: aws.String(env.Bucket + "/u/a")})
			return err
		}, []string{obj("READ", "u/a"), obj("WRITE", "u/c"), obj("READWRITE", "u/c")}, ""},
		{"UploadPartCopy", func(c *s3.Client) error {
			_, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: b, Key: aws.String("u/c"), CopySource: aws.String(env.Bucket + "/u/a"), UploadId: aws.String("up"), PartNumber: aws.Int32(1)})
			return err
		}, []string{obj("READ", "u/a"), obj("WRITE", "u/c"), obj("READWRITE", "u/c")}, "NotImplemented"},
	}
	for _, c := range cases {
		t.Run(c.op, func(t *testing.T) {
			// A Cache of its own: nothing held from the other operations.
			rec := &recorder{next: s3control.NewFromConfig(env.Config())}
			grants, err := accessgrants.New(accessgrants.Options{AccountID: env.AWS.AccountID(), Now: env.Clock.Now, DataAccessClient: rec})
			if err != nil {
				t.Fatal(err)
			}
			client := grants.S3Client(base(env), pathStyle, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
			err = c.call(client)
			if got := rec.take(); !slices.Equal(got, c.want) {
				t.Fatalf("GetDataAccess requests %q, want %q", got, c.want)
			}
			var ae smithy.APIError
			switch {
			case c.code == "" && err != nil:
				t.Fatal(err)
			case c.code != "" && (!errors.As(err, &ae) || ae.ErrorCode() != c.code):
				t.Fatalf("%v, want S3's %s", err, c.code)
			}
			// The same operation again: served by what is held.
			_ = c.call(client)
			if got := rec.take(); len(got) != 0 {
				t.Fatalf("the second %s asked again: %q", c.op, got)
			}
		})
	}
}

func TestS3ClientRefusesUnmappedOperations(t *testing.T) {
	f := newFixture(t)
	env := f.env
	env.AWS.Grant(env.Bucket, "", env.AWS.UserID("alice"), tiptest.AccessReadWrite)
	ctx := f.as(t, "alice")
	client := f.grants.S3Client(base(env), pathStyle)
	b := aws.String(env.Bucket)
	for op, call := range map[string]func() error{
		"CreateBucket": func() error {
			_, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("other-bucket")})
			return err
		},
		"DeleteBucket":    func() error { _, err := client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: b}); return err },
		"GetBucketPolicy": func() error { _, err := client.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: b}); return err },
		"PutObjectAcl": func() error {
			_, err := client.PutObjectAcl(ctx, &s3.PutObjectAclInput{Bucket: b, Key: aws.String("k"), ACL: s3types.ObjectCannedACLPublicRead})
			return err
		},
		"ListBuckets": func() error { _, err := client.ListBuckets(ctx, &s3.ListBucketsInput{}); return err },
	} {
		err := call()
		if !errors.Is(err, accessgrants.ErrUnsupported) || !strings.Contains(err.Error(), op) {
			t.Fatalf("%s: %v, want ErrUnsupported naming the operation", op, err)
		}
		if n := env.AWS.Calls(op); n != 0 {
			t.Fatalf("%s was sent %d times", op, n)
		}
		if got := accessgrants.HTTPStatus(err); got != http.StatusInternalServerError {
			t.Fatalf("HTTPStatus(%s's error) = %d", op, got)
		}
	}
	f.calls(t, 0)
}

// Options.Fallback signs what S3 Access Grants refuses the caller, and
// nothing else.
func TestS3ClientFallback(t *testing.T) {
	f := newFixture(t)
	env := f.env
	for key, content := range map[string]string{"public/readme": "for everyone", "alice/own": "alice's", "secret/x": "no one's"} {
		if err := env.AWS.PutObject(env.Bucket, key, []byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	env.AWS.Grant(env.Bucket, "alice/", env.AWS.UserID("alice"), tiptest.AccessRead)
	env.AWS.Grant(env.Bucket, "public/", env.AWS.UserID("svc"), tiptest.AccessRead)
	// The fallback: credentials that reach public/ only (here, those S3
	// Access Grants vends a service user).
	svc, err := f.grants.GetDataAccess(f.as(t, "svc"), accessgrants.Prefix(env.Bucket, "public/", types.PermissionRead))
	if err != nil {
		t.Fatal(err)
	}
	alice := f.as(t, "alice")

	off := f.grants.S3Client(base(env), pathStyle)
	gets := env.AWS.Calls("GetObject")
	_, err = s3Read(alice, off, env.Bucket, "public/readme")
	wantDenied(t, "without a fallback", err)
	if env.AWS.Calls("GetObject") != gets {
		t.Fatal("a refused read was sent")
	}

	withFallback, err := accessgrants.New(accessgrants.Options{AccountID: env.AWS.AccountID(), Now: env.Clock.Now, Fallback: svc.Credentials})
	if err != nil {
		t.Fatal(err)
	}
	on := withFallback.S3Client(base(env), pathStyle)
	if got, err := s3Read(alice, on, env.Bucket, "public/readme"); err != nil || got != "for everyone" {
		t.Fatalf("with the fallback: %q, %v", got, err)
	}
	// Alice's own grant still serves her own data, with her credentials.
	calls := env.AWS.Calls("GetDataAccess")
	if got, err := s3Read(alice, on, env.Bucket, "alice/own"); err != nil || got != "alice's" {
		t.Fatalf("alice/own: %q, %v", got, err)
	}
	if env.AWS.Calls("GetDataAccess") != calls+1 {
		t.Fatal("alice's own read did not ask S3 Access Grants")
	}
	// What the fallback does not reach, S3 refuses with its own error.
	_, err = s3Read(alice, on, env.Bucket, "secret/x")
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" || errors.Is(err, accessgrants.ErrDenied) {
		t.Fatalf("secret/x with the fallback: %v, want S3's AccessDenied", err)
	}
	// Never without a caller, never for an unmapped operation.
	if _, err := s3Read(context.Background(), on, env.Bucket, "public/readme"); !errors.Is(err, accessgrants.ErrNoCaller) {
		t.Fatalf("no caller: %v", err)
	}
	if _, err := on.ListBuckets(alice, &s3.ListBucketsInput{}); !errors.Is(err, accessgrants.ErrUnsupported) {
		t.Fatalf("ListBuckets: %v", err)
	}
}

// A copy whose source and destination are in two grants cannot be signed
// with one set of credentials: refused, not sent.
func TestS3ClientCopyAcrossGrants(t *testing.T) {
	f := newFixture(t)
	env := f.env
	if err := env.AWS.PutObject(env.Bucket, "in/a", []byte("a")); err != nil {
		t.Fatal(err)
	}
	env.AWS.Grant(env.Bucket, "in/", env.AWS.UserID("alice"), tiptest.AccessRead)
	env.AWS.Grant(env.Bucket, "out/", env.AWS.UserID("alice"), tiptest.AccessReadWrite)
	ctx := f.as(t, "alice")
	client := f.grants.S3Client(base(env), pathStyle)
	_, err := client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String("out/a"), CopySource: aws.String(env.Bucket + "/in/a")})
	wantDenied(t, "a copy across two grants", err)
	if !strings.Contains(err.Error(), "two grants") || env.AWS.Calls("CopyObject") != 0 {
		t.Fatalf("%v; CopyObject calls %d", err, env.AWS.Calls("CopyObject"))
	}
	// Through GetObject and PutObject, each with its own grant, it works.
	got, err := s3Read(ctx, client, env.Bucket, "in/a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String("out/a"), Body: strings.NewReader(got)}); err != nil {
		t.Fatal(err)
	}
}

// Concurrent first operations of one user outside the grant of the call
// under way: each makes its own call once that one ends; a refusal of one
// target is not another's.
func TestS3ClientConcurrentFirstOperationsOfSeveralGrants(t *testing.T) {
	f := newFixture(t)
	env := f.env
	for _, k := range []string{"alice/a", "shared/b", "bob/c"} {
		if err := env.AWS.PutObject(env.Bucket, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	env.AWS.Grant(env.Bucket, "alice/", env.AWS.UserID("alice"), tiptest.AccessRead)
	env.AWS.Grant(env.Bucket, "shared/", env.AWS.UserID("alice"), tiptest.AccessRead)
	ctx := f.as(t, "alice")
	client := f.grants.S3Client(base(env), pathStyle)
	env.AWS.SetFault("GetDataAccess", tiptest.Fault{Latency: 50 * time.Millisecond})
	var wg sync.WaitGroup
	errs := make([]error, 9)
	keys := []string{"alice/a", "shared/b", "bob/c"}
	for i := range errs {
		wg.Go(func() {
			key := keys[i%3]
			var got string
			got, errs[i] = s3Read(ctx, client, env.Bucket, key)
			if errs[i] == nil && got != key {
				errs[i] = fmt.Errorf("read %q", got)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if keys[i%3] == "bob/c" {
			wantDenied(t, "bob/c", err)
		} else if err != nil {
			t.Fatalf("%s: %v", keys[i%3], err)
		}
	}
	// One call per grant, and for the refused target (a refusal is not
	// held: each of its requests shares a call, or makes one).
	if n := env.AWS.Calls("GetDataAccess"); n < 3 || n > 5 {
		t.Fatalf("Calls(GetDataAccess) = %d, want 3 to 5", n)
	}
}

func TestHTTPStatus(t *testing.T) {
	f := newFixture(t)
	env := f.env
	env.AWS.Grant(env.Bucket, "alice/", env.AWS.UserID("alice"), tiptest.AccessRead)
	if err := env.AWS.PutObject(env.Bucket, "alice/a", []byte("a")); err != nil {
		t.Fatal(err)
	}
	ctx := f.as(t, "alice")
	client := f.grants.S3Client(base(env), pathStyle, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	read := func(ctx context.Context, key string) error {
		_, err := s3Read(ctx, client, env.Bucket, key)
		return err
	}
	head := func(key string) error {
		_, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String(key)})
		return err
	}
	check := func(what string, err error, want int) {
		t.Helper()
		if got := accessgrants.HTTPStatus(err); got != want {
			t.Fatalf("%s: HTTPStatus(%v) = %d, want %d", what, err, got, want)
		}
	}
	check("nil", nil, http.StatusOK)
	check("a read", read(ctx, "alice/a"), http.StatusOK)
	check("no caller", read(context.Background(), "alice/a"), http.StatusUnauthorized)
	check("no grant", read(ctx, "bob/a"), http.StatusForbidden)
	check("a key S3 Access Grants cannot take", read(ctx, "alice/a*"), http.StatusBadRequest)
	check("a missing key", read(ctx, "alice/missing"), http.StatusNotFound)
	check("HeadObject of a missing key", head("alice/missing"), http.StatusNotFound)
	_, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("no-such-bucket"), Key: aws.String("alice/a")})
	check("a missing bucket (S3 Access Grants refuses it first)", err, http.StatusForbidden)
	env.AWS.SetFault("GetObject", tiptest.Fault{Code: "SlowDown"})
	check("S3 throttling", read(ctx, "alice/a"), http.StatusServiceUnavailable)
	env.AWS.SetFault("GetObject", tiptest.Fault{Code: "InternalError"})
	check("S3 failing", read(ctx, "alice/a"), http.StatusServiceUnavailable)
	env.AWS.ClearFaults()
	env.AWS.SetFault("GetDataAccess", tiptest.Fault{Code: "InternalError"})
	check("S3 Access Grants failing", read(ctx, "shared/new"), http.StatusServiceUnavailable)
	env.AWS.ClearFaults()
	_, err = client.ListBuckets(ctx, &s3.ListBucketsInput{})
	check("an unmapped operation", err, http.StatusInternalServerError)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	check("a cancelled request", read(cancelled, "alice/other"), http.StatusServiceUnavailable)
	check("another error", errors.New("something else"), http.StatusInternalServerError)
}

// GetDataAccess for five objects under one grant of a user, at once: one
// call, whose credentials serve the five; another user's concurrent
// requests wait for no call of the first's and get their own.
func TestConcurrentRequestsWithinOneGrantShareOneCall(t *testing.T) {
	f := newFixture(t)
	env := f.env
	env.AWS.Grant(env.Bucket, "alice/", env.AWS.UserID("alice"), tiptest.AccessRead)
	env.AWS.Grant(env.Bucket, "alice/", env.AWS.UserID("bob"), tiptest.AccessRead)
	ctxs := map[string]context.Context{"alice": f.as(t, "alice"), "bob": f.as(t, "bob")}
	env.AWS.SetFault("GetDataAccess", tiptest.Fault{Latency: 100 * time.Millisecond})
	var wg sync.WaitGroup
	var mu sync.Mutex
	keys := map[string]map[string]bool{"alice": {}, "bob": {}}
	for _, u := range []string{"alice", "bob"} {
		for i := range 5 {
			wg.Go(func() {
				cfg, err := f.grants.GetDataAccess(ctxs[u], accessgrants.Object(env.Bucket, fmt.Sprintf("alice/%d", i), types.PermissionRead))
				if err != nil {
					t.Error(err)
					return
				}
				key, owner := f.key(t, cfg)
				if owner != u {
					t.Errorf("%s got credentials of %q", u, owner)
				}
				mu.Lock()
				keys[u][key] = true
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	f.calls(t, 2)
	if len(keys["alice"]) != 1 || len(keys["bob"]) != 1 {
		t.Fatalf("sets of credentials per user: alice %d, bob %d; want 1 each", len(keys["alice"]), len(keys["bob"]))
	}
}
