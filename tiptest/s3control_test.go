package tiptest_test

import (
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3control"
	s3ctypes "github.com/aws/aws-sdk-go-v2/service/s3control/types"

	"github.com/tipkit/tipkit/tiptest"
)

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// credsOfData converts the credentials of GetDataAccess.
func credsOfData(out *s3control.GetDataAccessOutput) aws.Credentials {
	return aws.Credentials{
		AccessKeyID:     aws.ToString(out.Credentials.AccessKeyId),
		SecretAccessKey: aws.ToString(out.Credentials.SecretAccessKey),
		SessionToken:    aws.ToString(out.Credentials.SessionToken),
	}
}

func TestGetDataAccess(t *testing.T) {
	env := tiptest.New(t)
	s3Seed(t, env, "alice/a.txt", "alice/deep/b.txt", "alice/deep/c.txt")
	env.AWS.Grant(env.Bucket, "alice/", "alice", tiptest.AccessRead)
	env.AWS.Grant(env.Bucket, "alice/deep/", "alice", tiptest.AccessReadWrite)
	session := s3UserCreds(t, env, "alice")
	start := env.Clock.Now()

	// The default: one hour, the closest grant's scope, the user as grantee.
	out, err := s3DataAccess(env, &session, s3Target(env, "alice/deep/b"), permRead)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.MatchedGrantTarget) != s3Target(env, "alice/deep/") || out.Grantee == nil ||
		out.Grantee.GranteeType != s3ctypes.GranteeTypeDirectoryUser || !uuidPattern.MatchString(aws.ToString(out.Grantee.GranteeIdentifier)) {
		t.Fatalf("matched %q, grantee %+v", aws.ToString(out.MatchedGrantTarget), out.Grantee)
	}
	if exp := aws.ToTime(out.Credentials.Expiration); exp.Sub(start) < time.Hour-time.Second || exp.After(env.Clock.Now().Add(time.Hour)) {
		t.Fatalf("expires %v after the request, want 1h", exp.Sub(start))
	}
	creds := credsOfData(out)
	if !strings.HasPrefix(creds.AccessKeyID, "ASIA") || creds.SessionToken == "" {
		t.Fatalf("credentials %s", creds.AccessKeyID)
	}
	if u, ok := env.AWS.UserFor(creds.AccessKeyID); !ok || u != "alice" {
		t.Fatalf("UserFor = %q, %v", u, ok)
	}
	c := s3Client(env, &creds)
	if body, err := s3Get(c, env.Bucket, "alice/deep/c.txt"); err != nil || body != "content of alice/deep/c.txt" {
		t.Fatalf("read within the matched grant: %q %v", body, err)
	}
	_, err = s3Get(c, env.Bucket, "alice/a.txt") // another grant's scope
	awsWantCode(t, err, "AccessDenied", http.StatusForbidden)
	awsWantCode(t, s3Put(c, env.Bucket, "alice/deep/new", "x"), "AccessDenied", http.StatusForbidden) // READ asked
	id, err := awsSTS(env, &creds).GetCallerIdentity(bg, nil)
	if err != nil || !strings.Contains(aws.ToString(id.Arn), ":assumed-role/tipkit-access-grants-location/") {
		t.Fatalf("GetCallerIdentity: %v %v", id, err)
	}

	// A duration of 900 s; the permission of the closest grant that gives it.
	out, err = s3DataAccess(env, &session, s3Target(env, "alice/"), permRead, func(in *s3control.GetDataAccessInput) {
		in.DurationSeconds = aws.Int32(900)
	})
	// 900 s from the moment of the call, which is after start and before
	// now (the clock runs on; Expiration is in whole seconds).
	if err != nil || aws.ToTime(out.Credentials.Expiration).After(env.Clock.Now().Add(900*time.Second)) ||
		aws.ToString(out.MatchedGrantTarget) != s3Target(env, "alice/") {
		t.Fatalf("900 s: %v %v", out, err)
	}
	_, err = s3DataAccess(env, &session, s3Target(env, "alice/"), permWrite)
	awsWantCode(t, err, "AccessDenied", http.StatusForbidden)
	out, err = s3DataAccess(env, &session, s3Target(env, "alice/deep/"), permWrite)
	if err != nil {
		t.Fatal(err)
	}
	creds = credsOfData(out)
	if err := s3Put(s3Client(env, &creds), env.Bucket, "alice/deep/new", "x"); err != nil {
		t.Fatal(err)
	}
	_, err = s3List(s3Client(env, &creds), env.Bucket, "alice/deep/", "") // WRITE asked
	awsWantCode(t, err, "AccessDenied", http.StatusForbidden)

	// Minimal privilege on an object: the credentials reach that key only.
	out, err = s3DataAccess(env, &session, "s3://"+env.Bucket+"/alice/a.txt", permRead, func(in *s3control.GetDataAccessInput) {
		in.TargetType = s3ctypes.S3PrefixTypeObject
		in.Privilege = s3ctypes.PrivilegeMinimal
	})
	if err != nil {
		t.Fatal(err)
	}
	creds = credsOfData(out)
	if _, err := s3Get(s3Client(env, &creds), env.Bucket, "alice/a.txt"); err != nil {
		t.Fatal(err)
	}
	_, err = s3Get(s3Client(env, &creds), env.Bucket, "alice/a.txt2")
	awsWantCode(t, err, "AccessDenied", http.StatusForbidden)
	_, err = s3List(s3Client(env, &creds), env.Bucket, "alice/a.txt", "")
	awsWantCode(t, err, "AccessDenied", http.StatusForbidden)

	// Minimal privilege on a prefix: the credentials reach that prefix only.
	out, err = s3DataAccess(env, &session, s3Target(env, "alice/deep/b"), permRead, func(in *s3control.GetDataAccessInput) {
		in.Privilege = s3ctypes.PrivilegeMinimal
	})
	if err != nil {
		t.Fatal(err)
	}
	creds = credsOfData(out)
	got, err := s3List(s3Client(env, &creds), env.Bucket, "alice/deep/b", "")
	wantKeys(t, got, err, "alice/deep/b.txt")
	_, err = s3Get(s3Client(env, &creds), env.Bucket, "alice/deep/c.txt")
	awsWantCode(t, err, "AccessDenied", http.StatusForbidden)

	// Bad requests.
	for name, edit := range map[string]func(*s3control.GetDataAccessInput){
		"duration too short":  func(in *s3control.GetDataAccessInput) { in.DurationSeconds = aws.Int32(899) },
		"duration too long":   func(in *s3control.GetDataAccessInput) { in.DurationSeconds = aws.Int32(43201) },
		"unknown permission":  func(in *s3control.GetDataAccessInput) { in.Permission = "ADMIN" },
		"unknown privilege":   func(in *s3control.GetDataAccessInput) { in.Privilege = "Maximal" },
		"unknown target type": func(in *s3control.GetDataAccessInput) { in.TargetType = "Folder" },
		"not an S3 URI":       func(in *s3control.GetDataAccessInput) { in.Target = aws.String(env.Bucket + "/alice/*") },
		"bad bucket":          func(in *s3control.GetDataAccessInput) { in.Target = aws.String("s3://Bad_Bucket/alice/*") },
		"inner wildcard":      func(in *s3control.GetDataAccessInput) { in.Target = aws.String(s3Target(env, "alice/*/x")) },
		"object with wildcard": func(in *s3control.GetDataAccessInput) {
			in.TargetType = s3ctypes.S3PrefixTypeObject
		},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := s3DataAccess(env, &session, s3Target(env, "alice/"), permRead, edit)
			awsWantCode(t, err, "InvalidRequest", http.StatusBadRequest)
		})
	}
	// Another account's instance.
	_, err = s3DataAccess(env, &session, s3Target(env, "alice/"), permRead, func(in *s3control.GetDataAccessInput) {
		in.AccountId = aws.String("111122223333")
	})
	awsWantCode(t, err, "AccessDenied", http.StatusForbidden)
	// An operation of S3 Control that the local AWS does not serve.
	_, err = s3Control(env, &session).ListAccessGrants(bg, &s3control.ListAccessGrantsInput{AccountId: aws.String(env.AWS.AccountID())})
	awsWantCode(t, err, "NotImplemented", http.StatusNotImplemented)
}

func TestGetDataAccessSignature(t *testing.T) {
	env := tiptest.New(t)
	env.AWS.Grant(env.Bucket, "alice/", "alice", tiptest.AccessReadWrite)
	session := s3UserCreds(t, env, "alice")

	wrong := session
	wrong.SecretAccessKey = otherSecret(session.SecretAccessKey)
	_, err := s3DataAccess(env, &wrong, s3Target(env, "alice/"), permRead)
	awsWantCode(t, err, "SignatureDoesNotMatch", http.StatusForbidden)
	other := s3Control(env, &session, func(o *s3control.Options) { o.Region = "eu-west-1" })
	_, err = other.GetDataAccess(bg, &s3control.GetDataAccessInput{
		AccountId: aws.String(env.AWS.AccountID()), Target: aws.String(s3Target(env, "alice/")), Permission: permRead,
	})
	awsWantCode(t, err, "AuthorizationHeaderMalformed", http.StatusBadRequest)

	// Raw requests: the account of the host must be that of the header.
	u, _ := url.Parse(env.AWS.URL())
	query := "/v20180820/accessgrantsinstance/dataaccess?permission=READ&target=" + url.QueryEscape(s3Target(env, "alice/"))
	raw := func(host, account string, sign bool) (int, string) {
		t.Helper()
		r, _ := http.NewRequest(http.MethodGet, "http://"+host+query, nil)
		if account != "" {
			r.Header.Set("X-Amz-Account-Id", account)
		}
		empty := sha256Hex(nil)
		r.Header.Set("X-Amz-Content-Sha256", empty)
		if sign {
			if err := v4.NewSigner().SignHTTP(bg, session, r, empty, "s3", env.AWS.Region(), time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := env.AWS.HTTPClient().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var doc struct {
			XMLName   xml.Name `xml:"ErrorResponse"`
			Code      string   `xml:"Error>Code"`
			RequestID string   `xml:"RequestId"`
		}
		if resp.StatusCode != http.StatusOK {
			if err := xml.Unmarshal(b, &doc); err != nil || doc.RequestID != resp.Header.Get("X-Amz-Request-Id") {
				t.Fatalf("S3 Control error body %s: %v", b, err)
			}
		}
		return resp.StatusCode, doc.Code
	}
	account := env.AWS.AccountID()
	if status, code := raw(account+"."+u.Host, account, true); status != http.StatusOK {
		t.Fatalf("signed raw request: %d %s", status, code)
	}
	if status, code := raw("111122223333."+u.Host, account, true); status != http.StatusBadRequest || code != "InvalidRequest" {
		t.Fatalf("host of another account: %d %s", status, code)
	}
	if status, code := raw(account+"."+u.Host, "", true); status != http.StatusBadRequest || code != "InvalidRequest" {
		t.Fatalf("no x-amz-account-id: %d %s", status, code)
	}
	if status, code := raw(account+"."+u.Host, account, false); status != http.StatusForbidden || code != "AccessDenied" {
		t.Fatalf("unsigned: %d %s", status, code)
	}

	// The session expires.
	env.Clock.Advance(901 * time.Second)
	_, err = s3DataAccess(env, &session, s3Target(env, "alice/"), permRead)
	awsWantCode(t, err, "ExpiredToken", http.StatusBadRequest)
}

func TestGetDataAccessFaults(t *testing.T) {
	env := tiptest.New(t)
	s3Seed(t, env, "alice/k")
	env.AWS.Grant(env.Bucket, "alice/", "alice", tiptest.AccessRead)
	session := s3UserCreds(t, env, "alice")
	retrying := s3control.NewFromConfig(env.Config(), func(o *s3control.Options) { o.Credentials = awsStaticCreds(session) })
	in := &s3control.GetDataAccessInput{
		AccountId: aws.String(env.AWS.AccountID()), Target: aws.String(s3Target(env, "alice/")), Permission: permRead,
	}

	env.AWS.SetFault("GetDataAccess", tiptest.Fault{Code: "SlowDown", Times: 1})
	out, err := retrying.GetDataAccess(bg, in)
	if err != nil {
		t.Fatal(err)
	}
	if n := env.AWS.Calls("GetDataAccess"); n != 2 {
		t.Fatalf("Calls(GetDataAccess) = %d, want 2 (one SlowDown, one retry)", n)
	}
	env.AWS.SetFault("GetDataAccess", tiptest.Fault{Code: "AccessDenied"})
	_, err = retrying.GetDataAccess(bg, in)
	awsWantCode(t, err, "AccessDenied", http.StatusForbidden)
	env.AWS.ClearFaults()

	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	creds := credsOfData(out)
	c := s3.NewFromConfig(env.Config(), func(o *s3.Options) {
		o.UsePathStyle = true
		o.Credentials = awsStaticCreds(creds)
	})
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String("alice/k")}); err != nil {
		t.Fatal(err)
	}
}

func TestGrantByUserID(t *testing.T) {
	env := tiptest.New(t)
	s3Seed(t, env, "alice/a.txt", "bob/b.txt")
	// As on AWS, the grantee is the user's ID in the identity store.
	env.AWS.Grant(env.Bucket, "alice/", env.AWS.UserID("alice"), tiptest.AccessRead)
	env.AWS.Grant(env.Bucket, "bob/", "bob", tiptest.AccessRead) // a name stands for its user's ID
	for user, prefix := range map[string]string{"alice": "alice/", "bob": "bob/"} {
		session := s3UserCreds(t, env, user)
		out, err := s3DataAccess(env, &session, s3Target(env, prefix), permRead)
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		if out.Grantee == nil || aws.ToString(out.Grantee.GranteeIdentifier) != env.AWS.UserID(user) {
			t.Fatalf("%s: grantee %+v, want %s", user, out.Grantee, env.AWS.UserID(user))
		}
	}
	// Another user's ID grants nothing to this one.
	env.AWS.Grant(env.Bucket, "bob/", env.AWS.UserID("carol"), tiptest.AccessRead)
	session := s3UserCreds(t, env, "alice")
	_, err := s3DataAccess(env, &session, s3Target(env, "bob/"), permRead)
	awsWantCode(t, err, "AccessDenied", http.StatusForbidden)
	// Groups by user ID too.
	env.AWS.GrantGroup(env.Bucket, "bob/", "readers", tiptest.AccessRead)
	env.AWS.SetGroups(env.AWS.UserID("alice"), "readers")
	if _, err := s3DataAccess(env, &session, s3Target(env, "bob/"), permRead); err != nil {
		t.Fatal(err)
	}
}

// callerGrants lists every grant of the caller of creds with the SDK's
// paginator, pages of pageSize, as "PERMISSION scope".
func callerGrants(t *testing.T, env *tiptest.Env, creds aws.Credentials, scope string, pageSize int32) ([]string, error) {
	t.Helper()
	in := &s3control.ListCallerAccessGrantsInput{AccountId: aws.String(env.AWS.AccountID()), MaxResults: pageSize}
	if scope != "" {
		in.GrantScope = aws.String(scope)
	}
	var got []string
	p := s3control.NewListCallerAccessGrantsPaginator(s3Control(env, &creds), in)
	for p.HasMorePages() {
		page, err := p.NextPage(bg)
		if err != nil {
			return nil, err
		}
		for _, g := range page.CallerAccessGrantsList {
			got = append(got, string(g.Permission)+" "+aws.ToString(g.GrantScope))
		}
	}
	return got, nil
}

func TestListCallerAccessGrants(t *testing.T) {
	env := tiptest.New(t)
	env.AWS.Grant(env.Bucket, "alice/", "alice", tiptest.AccessReadWrite)
	env.AWS.Grant(env.Bucket, "shared/", "bob", tiptest.AccessRead)
	env.AWS.Grant(env.Bucket, "alice/inbox/", env.AWS.UserID("alice"), tiptest.AccessWrite)
	env.AWS.GrantGroup(env.Bucket, "team/", "team", tiptest.AccessRead)
	env.AWS.SetGroups("alice", "team")
	alice := s3UserCreds(t, env, "alice")

	all := []string{
		"READWRITE " + s3Target(env, "alice/"),
		"WRITE " + s3Target(env, "alice/inbox/"),
		"READ " + s3Target(env, "team/"),
	}
	for _, size := range []int32{0, 1, 2} {
		got, err := callerGrants(t, env, alice, "", size)
		wantKeys(t, got, err, all...)
	}
	if n := env.AWS.Calls("ListCallerAccessGrants"); n != 1+3+2 {
		t.Fatalf("Calls(ListCallerAccessGrants) = %d, want 6", n)
	}
	// A grant scope: the grants that cover the path, and those under it.
	got, err := callerGrants(t, env, alice, "s3://"+env.Bucket+"/alice/inbox/2024/", 0)
	wantKeys(t, got, err, all[0], all[1])
	got, err = callerGrants(t, env, alice, "s3://"+env.Bucket+"/al", 0)
	wantKeys(t, got, err, all[0], all[1])
	got, err = callerGrants(t, env, alice, "s3://other-bucket/", 0)
	wantKeys(t, got, err)

	// Bob sees his own grant only; a session without a user sees none.
	bob := s3UserCreds(t, env, "bob")
	got, err = callerGrants(t, env, bob, "", 0)
	wantKeys(t, got, err, "READ "+s3Target(env, "shared/"))
	plain, err := awsAssumeAccess(awsSTS(env, nil), env, 900, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err = callerGrants(t, env, awsCredsOf(plain.Credentials), "", 0)
	wantKeys(t, got, err)

	// Refusals: the server user may not call it, another account's
	// instance, bad parameters, a token of another caller.
	server := env.AWS.ServerCredentials()
	_, err = callerGrants(t, env, server, "", 0)
	awsWantCode(t, err, "AccessDenied", http.StatusForbidden)
	list := func(edit func(*s3control.ListCallerAccessGrantsInput)) error {
		in := &s3control.ListCallerAccessGrantsInput{AccountId: aws.String(env.AWS.AccountID())}
		edit(in)
		_, err := s3Control(env, &alice).ListCallerAccessGrants(bg, in)
		return err
	}
	awsWantCode(t, list(func(in *s3control.ListCallerAccessGrantsInput) { in.AccountId = aws.String("111122223333") }),
		"AccessDenied", http.StatusForbidden)
	awsWantCode(t, list(func(in *s3control.ListCallerAccessGrantsInput) { in.GrantScope = aws.String(env.Bucket + "/alice/") }),
		"InvalidRequest", http.StatusBadRequest)
	awsWantCode(t, list(func(in *s3control.ListCallerAccessGrantsInput) { in.MaxResults = 1001 }),
		"InvalidRequest", http.StatusBadRequest)
	first, err := s3Control(env, &alice).ListCallerAccessGrants(bg, &s3control.ListCallerAccessGrantsInput{
		AccountId: aws.String(env.AWS.AccountID()), MaxResults: 1,
	})
	if err != nil || first.NextToken == nil {
		t.Fatalf("first page: %v, %v", first, err)
	}
	_, err = s3Control(env, &bob).ListCallerAccessGrants(bg, &s3control.ListCallerAccessGrantsInput{
		AccountId: aws.String(env.AWS.AccountID()), NextToken: first.NextToken,
	})
	awsWantCode(t, err, "InvalidRequest", http.StatusBadRequest)
}
