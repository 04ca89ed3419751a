package tiptest_test

import (
	"crypto/md5"
	"encoding/base64"
	"net/http"
	"net/url"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/tipkit/tipkit/tiptest"
)

func TestS3DeleteObject(t *testing.T) {
	env := tiptest.New(t)
	s3Seed(t, env, "alice/a", "alice/b", "bob/c")
	env.AWS.Grant(env.Bucket, "alice/", "alice", tiptest.AccessReadWrite)
	env.AWS.Grant(env.Bucket, "bob/", "bob", tiptest.AccessRead)
	alice := s3UserClient(t, env, "alice", "alice/", permWrite)
	bob := s3UserClient(t, env, "bob", "bob/", permRead)

	if _, err := alice.DeleteObject(bg, &s3.DeleteObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String("alice/a")}); err != nil {
		t.Fatal(err)
	}
	if _, ok := env.AWS.Object(env.Bucket, "alice/a"); ok {
		t.Fatal("alice/a is still there")
	}
	// A missing key is deleted too, as in a bucket without versioning.
	if _, err := alice.DeleteObject(bg, &s3.DeleteObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String("alice/none")}); err != nil {
		t.Fatal(err)
	}
	// Outside the scope, and with READ only: refused, nothing deleted.
	_, err := alice.DeleteObject(bg, &s3.DeleteObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String("bob/c")})
	awsWantCode(t, err, "AccessDenied", http.StatusForbidden)
	_, err = bob.DeleteObject(bg, &s3.DeleteObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String("bob/c")})
	awsWantCode(t, err, "AccessDenied", http.StatusForbidden)
	if _, ok := env.AWS.Object(env.Bucket, "bob/c"); !ok {
		t.Fatal("bob/c was deleted")
	}
	_, err = alice.DeleteObject(bg, &s3.DeleteObjectInput{Bucket: aws.String("no-such-bucket"), Key: aws.String("alice/b")})
	awsWantCode(t, err, "NoSuchBucket", http.StatusNotFound)
	if n := env.AWS.Calls("DeleteObject"); n != 5 {
		t.Fatalf("Calls(DeleteObject) = %d, want 5", n)
	}
}

func TestS3DeleteObjects(t *testing.T) {
	env := tiptest.New(t)
	s3Seed(t, env, "alice/a", "alice/b", "alice/c", "bob/d")
	env.AWS.Grant(env.Bucket, "alice/", "alice", tiptest.AccessReadWrite)
	alice := s3UserClient(t, env, "alice", "alice/", permWrite)

	ids := func(keys ...string) *types.Delete {
		d := &types.Delete{}
		for _, k := range keys {
			d.Objects = append(d.Objects, types.ObjectIdentifier{Key: aws.String(k)})
		}
		return d
	}
	// Each key is authorised on its own: bob/d is refused in the result,
	// the others are deleted.
	out, err := alice.DeleteObjects(bg, &s3.DeleteObjectsInput{Bucket: aws.String(env.Bucket), Delete: ids("alice/a", "alice/b", "bob/d")})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Deleted) != 2 || len(out.Errors) != 1 || aws.ToString(out.Errors[0].Key) != "bob/d" || aws.ToString(out.Errors[0].Code) != "AccessDenied" {
		t.Fatalf("Deleted %d, Errors %+v", len(out.Deleted), out.Errors)
	}
	for key, want := range map[string]bool{"alice/a": false, "alice/b": false, "alice/c": true, "bob/d": true} {
		if _, ok := env.AWS.Object(env.Bucket, key); ok != want {
			t.Fatalf("%s exists: %t, want %t", key, ok, want)
		}
	}
	// Quiet: only the errors are answered.
	d := ids("alice/c")
	d.Quiet = aws.Bool(true)
	out, err = alice.DeleteObjects(bg, &s3.DeleteObjectsInput{Bucket: aws.String(env.Bucket), Delete: d})
	if err != nil || len(out.Deleted) != 0 || len(out.Errors) != 0 {
		t.Fatalf("quiet: %v, %d deleted, %d errors", err, len(out.Deleted), len(out.Errors))
	}

	// Without a checksum of the body, and with a body that is not a list.
	creds := s3DataCreds(t, env, "alice", s3Target(env, "alice/"), permWrite)
	body := []byte(`<Delete><Object><Key>alice/x</Key></Object></Delete>`)
	status, code, _ := s3Raw(t, env, creds, "POST", "/"+env.Bucket+"?delete", sha256Hex(body), body, nil)
	if status != http.StatusBadRequest || code != "InvalidRequest" {
		t.Fatalf("no Content-MD5: %d %s", status, code)
	}
	body = []byte(`<Delete></Delete>`)
	status, code, _ = s3Raw(t, env, creds, "POST", "/"+env.Bucket+"?delete", sha256Hex(body), body, func(r *http.Request) {
		r.Header.Set("Content-Md5", md5Base64(body))
	})
	if status != http.StatusBadRequest || code != "MalformedXML" {
		t.Fatalf("no keys: %d %s", status, code)
	}
}

func TestS3CopyObject(t *testing.T) {
	env := tiptest.New(t)
	s3Seed(t, env, "bob/plan.md", "bob/a b+c.txt", "alice/notes.txt")
	env.AWS.Grant(env.Bucket, "bob/", "bob", tiptest.AccessReadWrite)
	env.AWS.Grant(env.Bucket, "alice/", "alice", tiptest.AccessReadWrite)
	bobRW := s3UserClient(t, env, "bob", "bob/", permReadWrite)
	bobW := s3UserClient(t, env, "bob", "bob/", permWrite)
	copyTo := func(c *s3.Client, source, key string, edit ...func(*s3.CopyObjectInput)) error {
		in := &s3.CopyObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String(key), CopySource: aws.String(source)}
		for _, e := range edit {
			e(in)
		}
		_, err := c.CopyObject(bg, in)
		return err
	}

	// READWRITE on the scope: copied, body and content type kept.
	if err := copyTo(bobRW, env.Bucket+"/bob/plan.md", "bob/copy.md"); err != nil {
		t.Fatal(err)
	}
	if got, _ := env.AWS.Object(env.Bucket, "bob/copy.md"); string(got) != "content of bob/plan.md" {
		t.Fatalf("copied %q", got)
	}
	// The source is URL-encoded, with or without a leading slash.
	if err := copyTo(bobRW, "/"+env.Bucket+"/"+url.PathEscape("bob/a b+c.txt"), "bob/copy2"); err != nil {
		t.Fatal(err)
	}
	if got, _ := env.AWS.Object(env.Bucket, "bob/copy2"); string(got) != "content of bob/a b+c.txt" {
		t.Fatalf("copied %q", got)
	}
	// WRITE alone does not reach the source: S3 checks it with the same
	// credentials.
	err := copyTo(bobW, env.Bucket+"/bob/plan.md", "bob/copy3.md")
	awsWantCode(t, err, "AccessDenied", http.StatusForbidden)
	// A source outside the scope, and a destination outside it.
	err = copyTo(bobRW, env.Bucket+"/alice/notes.txt", "bob/stolen")
	awsWantCode(t, err, "AccessDenied", http.StatusForbidden)
	err = copyTo(bobRW, env.Bucket+"/bob/plan.md", "alice/planted")
	awsWantCode(t, err, "AccessDenied", http.StatusForbidden)
	for _, key := range []string{"bob/copy3.md", "bob/stolen", "alice/planted"} {
		if _, ok := env.AWS.Object(env.Bucket, key); ok {
			t.Fatalf("%s was written", key)
		}
	}
	// A missing source, a bad encoding, onto itself without REPLACE.
	err = copyTo(bobRW, env.Bucket+"/bob/none", "bob/x")
	awsWantCode(t, err, "NoSuchKey", http.StatusNotFound)
	err = copyTo(bobRW, env.Bucket+"/bob/%zz", "bob/x")
	awsWantCode(t, err, "InvalidArgument", http.StatusBadRequest)
	err = copyTo(bobRW, env.Bucket+"/bob/plan.md", "bob/plan.md")
	awsWantCode(t, err, "InvalidRequest", http.StatusBadRequest)
	err = copyTo(bobRW, env.Bucket+"/bob/plan.md", "bob/plan.md", func(in *s3.CopyObjectInput) {
		in.MetadataDirective = types.MetadataDirectiveReplace
		in.ContentType = aws.String("text/markdown")
	})
	if err != nil {
		t.Fatal(err)
	}
	head, err := bobRW.HeadObject(bg, &s3.HeadObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String("bob/plan.md")})
	if err != nil || aws.ToString(head.ContentType) != "text/markdown" {
		t.Fatalf("after REPLACE: %v, %q", err, aws.ToString(head.ContentType))
	}
	if n := env.AWS.Calls("CopyObject"); n != 9 {
		t.Fatalf("Calls(CopyObject) = %d, want 9", n)
	}
}

// md5Base64 is the Content-MD5 of b.
func md5Base64(b []byte) string {
	sum := md5.Sum(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}
