package demo

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3control"
	s3ctypes "github.com/aws/aws-sdk-go-v2/service/s3control/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"golang.org/x/sync/singleflight"

	"github.com/tipkit/tipkit/ctxcreds"
)

// Limits of the cache of DataAccess.
const (
	// DataAccessMaxUsers bounds the users whose credentials DataAccess
	// keeps; the least recently used is dropped first.
	DataAccessMaxUsers = 1000
	// dataAccessMaxGrants bounds the credentials kept for one user.
	dataAccessMaxGrants = 16
	// DataAccessRefreshBefore is how long before their expiry cached
	// credentials are no longer used.
	DataAccessRefreshBefore = 5 * time.Minute
	// dataAccessTimeout bounds one GetDataAccess shared by concurrent
	// requests of a user.
	dataAccessTimeout = 30 * time.Second
)

// ErrNoAccount is returned when the account of the S3 Access Grants
// instance is neither configured nor told by STS GetCallerIdentity.
var ErrNoAccount = errors.New("the account of the S3 Access Grants instance is unknown")

// DataAccess gives a request's caller S3 clients through S3 Access Grants:
// the caller's identity-enhanced aws.Config calls S3 Control GetDataAccess
// for the target a handler needs, and the temporary credentials S3 Access
// Grants vends, scoped to the user's matching grant, call S3. It does so
// the same way against the local stand-in and against AWS.
//
// The vended credentials are kept per user (issuer and subject of the
// verified token) and grant until DataAccessRefreshBefore before they
// expire, for at most DataAccessMaxUsers users, so that a user's requests
// under the same grant call GetDataAccess once. It is safe for concurrent
// use.
type DataAccess struct {
	bucket    string
	pathStyle bool
	now       func() time.Time

	accountMu sync.Mutex
	accountID string

	flight singleflight.Group

	mu    sync.Mutex
	users map[string]*userGrants
}

// userGrants are the credentials kept for one user.
type userGrants struct {
	used   time.Time
	grants []grantCreds
}

// grantCreds are credentials of GetDataAccess and the scope they reach:
// the keys under prefix (or, with exact, the key prefix) with perm.
type grantCreds struct {
	prefix string
	exact  bool
	perm   s3ctypes.Permission
	creds  aws.Credentials
}

// NewDataAccess returns a DataAccess for bucket. accountID is the account
// of the S3 Access Grants instance (TIPKIT_ACCOUNT_ID); when empty, STS
// GetCallerIdentity tells it on first use. pathStyle addresses S3
// path-style, as the local stand-in requires.
func NewDataAccess(bucket, accountID string, pathStyle bool) *DataAccess {
	return &DataAccess{bucket: bucket, accountID: accountID, pathStyle: pathStyle, now: time.Now, users: map[string]*userGrants{}}
}

// Bucket returns the bucket of the files.
func (d *DataAccess) Bucket() string { return d.bucket }

// ForPrefix returns an S3 client for the caller of ctx, whose
// identity-enhanced configuration is cfg (ctxcreds.Config), that may use
// perm on the keys of the bucket under prefix: for a listing of prefix,
// READ. S3 Access Grants refuses a prefix outside the user's grants with
// AccessDenied.
func (d *DataAccess) ForPrefix(ctx context.Context, cfg aws.Config, prefix string, perm s3ctypes.Permission) (*s3.Client, error) {
	return d.client(ctx, cfg, prefix, false, perm)
}

// ForObject is ForPrefix for the one object key: READ to read it, WRITE
// to write it.
func (d *DataAccess) ForObject(ctx context.Context, cfg aws.Config, key string, perm s3ctypes.Permission) (*s3.Client, error) {
	return d.client(ctx, cfg, key, true, perm)
}

func (d *DataAccess) client(ctx context.Context, cfg aws.Config, path string, object bool, perm s3ctypes.Permission) (*s3.Client, error) {
	user := ""
	if id, ok := ctxcreds.IdentityFrom(ctx); ok {
		user = id.Issuer() + "\x00" + id.Subject()
	}
	creds, ok := d.cached(user, path, object, perm)
	if !ok {
		target := "s3://" + d.bucket + "/" + path
		if !object {
			target += "*"
		}
		key := user + "\x00" + target + "\x00" + string(perm)
		fetch := func() (any, error) {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dataAccessTimeout)
			defer cancel()
			return d.fetch(ctx, cfg, user, target, object, perm)
		}
		var v any
		var err error
		if user == "" { // no identity to share the credentials with
			v, err = fetch()
		} else {
			v, err, _ = d.flight.Do(key, fetch)
		}
		if err != nil {
			return nil, err
		}
		creds = v.(aws.Credentials)
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = d.pathStyle
		o.Credentials = credentials.StaticCredentialsProvider{Value: creds}
	}), nil
}

// fetch calls GetDataAccess with cfg and keeps what it vends for user.
func (d *DataAccess) fetch(ctx context.Context, cfg aws.Config, user, target string, object bool, perm s3ctypes.Permission) (aws.Credentials, error) {
	account, err := d.account(ctx, cfg)
	if err != nil {
		return aws.Credentials{}, err
	}
	in := &s3control.GetDataAccessInput{
		AccountId:  aws.String(account),
		Target:     aws.String(target),
		Permission: perm,
	}
	if object {
		in.TargetType = s3ctypes.S3PrefixTypeObject
	}
	out, err := s3control.NewFromConfig(cfg).GetDataAccess(ctx, in)
	if err != nil {
		return aws.Credentials{}, err
	}
	if out.Credentials == nil {
		return aws.Credentials{}, errors.New("S3 Access Grants answered without credentials")
	}
	creds := aws.Credentials{
		AccessKeyID:     aws.ToString(out.Credentials.AccessKeyId),
		SecretAccessKey: aws.ToString(out.Credentials.SecretAccessKey),
		SessionToken:    aws.ToString(out.Credentials.SessionToken),
		Source:          "S3AccessGrants",
	}
	if out.Credentials.Expiration != nil {
		creds.CanExpire, creds.Expires = true, *out.Credentials.Expiration
	}
	if user != "" && creds.CanExpire {
		if g, ok := d.scopeOf(aws.ToString(out.MatchedGrantTarget), perm, creds); ok {
			d.keep(user, g)
		}
	}
	return creds, nil
}

// account returns the account of the S3 Access Grants instance: the one
// configured, else the caller's, told by STS GetCallerIdentity (the
// instance is in the account of the access role).
func (d *DataAccess) account(ctx context.Context, cfg aws.Config) (string, error) {
	d.accountMu.Lock()
	defer d.accountMu.Unlock()
	if d.accountID != "" {
		return d.accountID, nil
	}
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", err
	}
	if aws.ToString(out.Account) == "" {
		return "", ErrNoAccount
	}
	d.accountID = aws.ToString(out.Account)
	return d.accountID, nil
}

// scopeOf turns the MatchedGrantTarget of GetDataAccess
// ("s3://bucket/prefix*", or an object's URI) into the scope the vended
// credentials reach.
func (d *DataAccess) scopeOf(matched string, perm s3ctypes.Permission, creds aws.Credentials) (grantCreds, bool) {
	path, ok := strings.CutPrefix(matched, "s3://"+d.bucket+"/")
	if !ok {
		if matched != "s3://"+d.bucket {
			return grantCreds{}, false
		}
		path = "*"
	}
	g := grantCreds{perm: perm, creds: creds}
	if prefix, wild := strings.CutSuffix(path, "*"); wild {
		g.prefix = prefix
	} else {
		g.prefix, g.exact = path, true
	}
	if strings.Contains(g.prefix, "*") {
		return grantCreds{}, false
	}
	return g, true
}

// permits reports whether credentials of have serve a request of want.
func permits(have, want s3ctypes.Permission) bool {
	return have == want || have == s3ctypes.PermissionReadwrite
}

// cached returns kept credentials of user that reach path with perm and
// are not about to expire.
func (d *DataAccess) cached(user, path string, object bool, perm s3ctypes.Permission) (aws.Credentials, bool) {
	if user == "" {
		return aws.Credentials{}, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	u := d.users[user]
	if u == nil {
		return aws.Credentials{}, false
	}
	now := d.now()
	live := u.grants[:0]
	var found *aws.Credentials
	for _, g := range u.grants {
		if !now.Before(g.creds.Expires.Add(-DataAccessRefreshBefore)) {
			continue // about to expire: dropped
		}
		live = append(live, g)
		if found == nil && permits(g.perm, perm) &&
			((g.exact && object && path == g.prefix) || (!g.exact && strings.HasPrefix(path, g.prefix))) {
			c := g.creds
			found = &c
		}
	}
	clear(u.grants[len(live):])
	u.grants = live
	if found == nil {
		return aws.Credentials{}, false
	}
	u.used = now
	return *found, true
}

// keep stores g for user, dropping the user's oldest credentials past
// dataAccessMaxGrants and the least recently used user past
// DataAccessMaxUsers.
func (d *DataAccess) keep(user string, g grantCreds) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	u := d.users[user]
	if u == nil {
		if len(d.users) >= DataAccessMaxUsers {
			oldest, first := "", true
			for k, v := range d.users {
				if first || v.used.Before(d.users[oldest].used) {
					oldest, first = k, false
				}
			}
			delete(d.users, oldest)
		}
		u = &userGrants{}
		d.users[user] = u
	}
	u.used = now
	if len(u.grants) >= dataAccessMaxGrants {
		u.grants = append(u.grants[:0], u.grants[1:]...)
	}
	u.grants = append(u.grants, g)
}

// cachedUsers returns how many users have credentials kept.
func (d *DataAccess) cachedUsers() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.users)
}
