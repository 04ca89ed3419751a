package accessgrants

import (
	"cmp"
	"container/list"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3control"
	"github.com/aws/aws-sdk-go-v2/service/s3control/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"golang.org/x/sync/singleflight"

	"github.com/tipkit/tipkit/ctxcreds"

	"github.com/tipkit/tipkit/internal/useragent"
)

// GetDataAccessAPIClient is the S3 Control client a [Cache] asks for
// credentials; *s3control.Client implements it.
type GetDataAccessAPIClient interface {
	GetDataAccess(ctx context.Context, in *s3control.GetDataAccessInput, optFns ...func(*s3control.Options)) (*s3control.GetDataAccessOutput, error)
}

// ListCallerAccessGrantsAPIClient is the S3 Control client a [Cache] lists
// the caller's grants with; *s3control.Client implements it.
type ListCallerAccessGrantsAPIClient interface {
	ListCallerAccessGrants(ctx context.Context, in *s3control.ListCallerAccessGrantsInput, optFns ...func(*s3control.Options)) (*s3control.ListCallerAccessGrantsOutput, error)
}

// Options configures a [Cache]. Zero fields take the defaults below.
type Options struct {
	// AccountID is the account of the S3 Access Grants instance, 12
	// digits. Empty: the account of the first caller's credentials, which
	// STS GetCallerIdentity tells once ([CallerAccount]); an instance is
	// usually in the account of the access role, whose sessions the
	// callers' are.
	AccountID string
	// MaxEntries bounds the sets of credentials held, all users together;
	// the least recently used is dropped first. Default 10,000.
	MaxEntries int
	// DataAccessExpiryWindow is how long before they expire held credentials stop
	// being handed out: a request then asks S3 Access Grants again.
	// Default 5 minutes; it must be shorter than 15 minutes, the shortest
	// lifetime S3 Access Grants vends.
	DataAccessExpiryWindow time.Duration
	// Timeout bounds one GetDataAccess shared by concurrent requests,
	// which runs detached from the requests waiting on it. Default 30
	// seconds.
	Timeout time.Duration
	// DataAccessClient, when set, makes the GetDataAccess calls, each with
	// the caller's credentials (set per call through
	// s3control.Options.Credentials). Default: an s3control client of the
	// caller's aws.Config.
	DataAccessClient GetDataAccessAPIClient
	// ListClient is DataAccessClient for ListCallerAccessGrants.
	ListClient ListCallerAccessGrantsAPIClient
	// Now tells the time that decides whether held credentials still
	// serve. Default time.Now; with tiptest, its Env.Clock.Now.
	Now func() time.Time
	// Fallback, when set, signs an operation of the client of
	// [Cache.S3Client] that S3 Access Grants refuses the caller (an error
	// matching [ErrDenied]: no grant of the caller covers it, or a copy
	// spans two grants), as the Java plugin's enableFallback does. Off by
	// default, and a risk: the fallback is the server's own identity, not
	// the caller's, so any caller reaches whatever it allows, and S3 logs
	// the server, not the user. Give it only credentials that reach data
	// every caller may see. It is wrapped in an aws.CredentialsCache
	// unless it is one. It is never used without a caller ([ErrNoCaller])
	// nor for an operation the client does not map ([ErrUnsupported]).
	Fallback aws.CredentialsProvider
}

// Defaults of [Options].
const (
	DefaultMaxEntries             = 10_000
	DefaultDataAccessExpiryWindow = 5 * time.Minute
	DefaultTimeout                = 30 * time.Second
)

// minVended is the shortest lifetime S3 Access Grants vends credentials
// for; maxVended the longest.
const (
	minVended = 900 * time.Second
	maxVended = 43200 * time.Second
)

// Errors a caller branches on with errors.Is.
var (
	// ErrDenied means S3 Access Grants refused the caller (AccessDenied):
	// no grant of the caller's user, or of the user's groups, gives the
	// permission asked for on the target; or the caller may not use the
	// instance. It is answered 403.
	ErrDenied = errors.New("accessgrants: S3 Access Grants refused the caller")
	// ErrNoCaller means the context holds no caller: no verified identity
	// (ctxcreds.IdentityFrom) or no AWS configuration (ctxcreds.Config),
	// as in a handler not behind tipkit's middleware.
	ErrNoCaller = errors.New("accessgrants: the context holds no caller (an identity and an AWS configuration, as tipkit's middleware puts there)")
	// ErrRequest means a Request is not one S3 Access Grants accepts: a
	// target that is not an S3 URI, a permission other than READ, WRITE
	// and READWRITE, a duration outside 15 minutes to 12 hours.
	ErrRequest = errors.New("accessgrants: invalid request")
	// ErrUnsupported means the client of [Cache.S3Client] was asked for
	// an S3 operation it has no S3 Access Grants permission for: it is
	// refused before anything is sent.
	ErrUnsupported = errors.New("accessgrants: the S3 operation has no S3 Access Grants permission")
	// ErrConfig means New was given Options it cannot work with.
	ErrConfig = errors.New("accessgrants: invalid options")
)

// Error is a failed call of S3 Control (or, for the account, STS): Op is
// the operation, Code the AWS error code ("" when the call got no
// answer), Err the SDK's error. It matches [ErrDenied] when the code is
// AccessDenied.
type Error struct {
	Op   string
	Code string
	Err  error
}

// Error describes the failure; the SDK's message holds no credential.
func (e *Error) Error() string {
	if e.Err == nil {
		return "accessgrants: " + e.Op + ": " + e.Code
	}
	return "accessgrants: " + e.Op + ": " + e.Err.Error()
}

// Unwrap returns the SDK's error, so that errors.As finds its
// smithy.APIError.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether e is [ErrDenied].
func (e *Error) Is(target error) bool {
	return target == ErrDenied && e.Code == "AccessDenied"
}

// callError wraps err, a failure of op.
func callError(op string, err error) error {
	e := &Error{Op: op, Err: err}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		e.Code = ae.ErrorCode()
	}
	return e
}

// Request is what [Cache.GetDataAccess] asks S3 Access Grants for. The
// zero values of TargetType, Privilege and Duration are S3 Access Grants'
// defaults. [Prefix] and [Object] build the common ones.
type Request struct {
	// Target is the S3 URI of the data: "s3://bucket/prefix/*" for the
	// keys under a prefix ("s3://bucket/*": the bucket), or
	// "s3://bucket/key" with TargetType Object for one object.
	Target string
	// Permission is READ, WRITE or READWRITE.
	Permission types.Permission
	// TargetType is types.S3PrefixTypeObject when Target is one object.
	TargetType types.S3PrefixType
	// Privilege is Default (the zero value) or Minimal. With Default,
	// the credentials reach the whole scope of the grant that matched (S3
	// Access Grants' MatchedGrantTarget), and serve later requests of the
	// user within that scope; with Minimal, they reach Target only, and
	// serve that Target only.
	Privilege types.Privilege
	// Duration is how long the credentials last: 15 minutes to 12 hours
	// in whole seconds, within the location role's maximum; 0 leaves it to
	// S3 Access Grants (1 hour).
	Duration time.Duration
}

// Prefix returns the Request of perm on the keys of bucket under prefix
// (the whole bucket when prefix is empty): the target
// "s3://bucket/prefix*". A listing of a prefix needs READ on it.
func Prefix(bucket, prefix string, perm types.Permission) Request {
	return Request{Target: "s3://" + bucket + "/" + prefix + "*", Permission: perm}
}

// Object returns the Request of perm on the object key of bucket: READ to
// read it, WRITE to write it.
func Object(bucket, key string, perm types.Permission) Request {
	return Request{Target: "s3://" + bucket + "/" + key, Permission: perm, TargetType: types.S3PrefixTypeObject}
}

// bucketName reports whether s has the form of a bucket name, loosely:
// 3 to 63 lowercase letters, digits, dots and hyphens. S3 Access Grants
// checks the name itself.
func bucketName(s string) bool {
	if len(s) < 3 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// path is an S3 location: with exact, the one object key of bucket; else
// the keys of bucket that start with prefix.
type path struct {
	bucket, prefix string
	exact          bool
}

// check validates r and returns the location of its target.
func (r *Request) check() (path, error) {
	switch r.Permission {
	case types.PermissionRead, types.PermissionWrite, types.PermissionReadwrite:
	default:
		return path{}, fmt.Errorf("%w: permission %q: want READ, WRITE or READWRITE", ErrRequest, r.Permission)
	}
	switch r.TargetType {
	case "", types.S3PrefixTypeObject:
	default:
		return path{}, fmt.Errorf("%w: target type %q: want Object or none", ErrRequest, r.TargetType)
	}
	switch r.Privilege {
	case "", types.PrivilegeDefault, types.PrivilegeMinimal:
	default:
		return path{}, fmt.Errorf("%w: privilege %q: want Default or Minimal", ErrRequest, r.Privilege)
	}
	if r.Duration != 0 && (r.Duration < minVended || r.Duration > maxVended || r.Duration%time.Second != 0) {
		return path{}, fmt.Errorf("%w: duration %v: want whole seconds from 15m to 12h", ErrRequest, r.Duration)
	}
	p, ok := parseS3URI(r.Target, r.TargetType == types.S3PrefixTypeObject)
	if !ok {
		return path{}, fmt.Errorf("%w: target %q: want s3://bucket/prefix* or, for an object, s3://bucket/key", ErrRequest, r.Target)
	}
	return p, nil
}

// parseS3URI parses "s3://bucket/prefix*" (a trailing "*" or none), or
// with object "s3://bucket/key".
func parseS3URI(uri string, object bool) (path, bool) {
	rest, ok := strings.CutPrefix(uri, "s3://")
	if !ok || len(uri) > 2000 {
		return path{}, false
	}
	bucket, key, _ := strings.Cut(rest, "/")
	if !bucketName(bucket) {
		return path{}, false
	}
	if object {
		return path{bucket: bucket, prefix: key, exact: true}, key != "" && !strings.HasSuffix(key, "*")
	}
	key = strings.TrimSuffix(key, "*")
	return path{bucket: bucket, prefix: key}, !strings.Contains(key, "*")
}

// covers reports whether credentials that reach sc reach p.
func (sc path) covers(p path) bool {
	if sc.bucket != p.bucket {
		return false
	}
	if sc.exact {
		return p.exact && p.prefix == sc.prefix
	}
	return strings.HasPrefix(p.prefix, sc.prefix)
}

// Cache obtains S3 credentials of S3 Access Grants for the callers of a
// server and keeps them per user. It is safe for concurrent use.
type Cache struct {
	o       Options
	account struct {
		flight singleflight.Group
		id     atomic.Pointer[string]
	}

	mu      sync.Mutex
	lru     list.List                  // of *entry; front: most recently used
	entries map[entryKey]*list.Element // every held entry, by the request that obtained it
	// scopes holds, per user, the entries of Default privilege whose
	// matched grant scope is known: they serve any request of the user
	// within that scope.
	scopes map[user][]*entry
	// flights holds, per user, the GetDataAccess calls under way.
	flights map[user][]*flight
}

// flight is a GetDataAccess call under way for a request of a user; done
// is closed when it ends, with e or err set.
type flight struct {
	key  entryKey
	path path
	done chan struct{}
	e    *entry
	err  error
}

// user names one user: issuer and subject of the verified token.
type user struct{ issuer, subject string }

// entryKey is a request of a user.
type entryKey struct {
	user       user
	target     string
	targetType types.S3PrefixType
	permission types.Permission
	privilege  types.Privilege // "" stands for Default
	duration   time.Duration
}

// entry is a set of vended credentials.
type entry struct {
	key      entryKey
	provider aws.CredentialsProvider // credentials.StaticCredentialsProvider, boxed once
	expires  time.Time
	scope    path // what the credentials reach, when scoped
	scoped   bool
}

// New checks o and returns a Cache. Every problem of o is reported here,
// as an error matching [ErrConfig].
func New(o Options) (*Cache, error) {
	switch {
	case o.AccountID != "" && !accountPattern.MatchString(o.AccountID):
		return nil, fmt.Errorf("%w: AccountID must be 12 digits", ErrConfig)
	case o.MaxEntries < 0 || o.DataAccessExpiryWindow < 0 || o.Timeout < 0:
		return nil, fmt.Errorf("%w: MaxEntries, DataAccessExpiryWindow and Timeout must not be negative", ErrConfig)
	case o.DataAccessExpiryWindow >= minVended:
		return nil, fmt.Errorf("%w: DataAccessExpiryWindow must be shorter than 15 minutes, the shortest lifetime of vended credentials", ErrConfig)
	}
	o.MaxEntries = cmp.Or(o.MaxEntries, DefaultMaxEntries)
	o.DataAccessExpiryWindow = cmp.Or(o.DataAccessExpiryWindow, DefaultDataAccessExpiryWindow)
	o.Timeout = cmp.Or(o.Timeout, DefaultTimeout)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Fallback != nil {
		if _, ok := o.Fallback.(*aws.CredentialsCache); !ok {
			o.Fallback = aws.NewCredentialsCache(o.Fallback)
		}
	}
	return &Cache{o: o, entries: map[entryKey]*list.Element{}, scopes: map[user][]*entry{}, flights: map[user][]*flight{}}, nil
}

// accountPattern is an AWS account ID.
var accountPattern = regexp.MustCompile(`^[0-9]{12}$`)

// caller returns the user and the AWS configuration of the caller of ctx.
func caller(ctx context.Context) (user, aws.Config, error) {
	id, ok := ctxcreds.IdentityFrom(ctx)
	if !ok || id.Subject() == "" {
		return user{}, aws.Config{}, ErrNoCaller
	}
	cfg, ok := ctxcreds.Config(ctx)
	if !ok || cfg.Credentials == nil {
		return user{}, aws.Config{}, ErrNoCaller
	}
	return user{issuer: id.Issuer(), subject: id.Subject()}, cfg, nil
}

// GetDataAccess returns the caller's AWS configuration (ctxcreds.Config
// of ctx) with, as its credentials, those S3 Access Grants vends the
// caller for r: an aws.Config for the S3 client that reads or writes the
// data of r.Target. Credentials held for the caller that reach r.Target
// with r.Permission (READWRITE serves READ and WRITE), asked for with the
// same Privilege and Duration and not within DataAccessExpiryWindow of their
// expiry, serve without a call; otherwise one S3 Control GetDataAccess is
// made with the caller's credentials, shared by the caller's concurrent
// identical requests and by those its matched grant turns out to cover
// (a request of the caller that misses while a call of the caller is
// under way waits for it first), and what it vends is held for the
// caller's later requests. A refusal is not held: the next request asks again. The
// credentials of the returned configuration do not renew themselves:
// they last at least DataAccessExpiryWindow from the call (unless S3 Access Grants
// vended them shorter), and a handler that runs longer asks again.
//
// It fails with [ErrNoCaller] when ctx holds no caller, [ErrRequest] when r
// is not valid, an [*Error] matching [ErrDenied] when S3 Access Grants
// refuses, another [*Error] when the call fails otherwise, and an error
// matching ctx.Err() when ctx ends first.
func (c *Cache) GetDataAccess(ctx context.Context, r Request) (aws.Config, error) {
	u, cfg, err := caller(ctx)
	if err != nil {
		return aws.Config{}, err
	}
	e, err := c.obtain(ctx, u, cfg, r)
	if err != nil {
		return aws.Config{}, err
	}
	cfg.Credentials = e.provider
	return cfg, nil
}

// obtain returns credentials of u, whose configuration is cfg, for r:
// held ones that serve r, else those of a call of GetDataAccess.
//
// Concurrent requests of one user share calls: a request that misses
// joins the call under way for the same request, or else waits for one
// call under way of the user that may cover it (same bucket, privilege
// Default, same duration, a permission that gives r's) and takes its
// credentials when the grant they matched covers r's target; otherwise it
// makes its own call. So the first requests of a user for many objects
// under one grant cost one call, and a request outside that grant waits
// for at most one call of another before its own.
func (c *Cache) obtain(ctx context.Context, u user, cfg aws.Config, r Request) (*entry, error) {
	p, err := r.check()
	if err != nil {
		return nil, err
	}
	k := entryKey{user: u, target: r.Target, targetType: r.TargetType, permission: r.Permission, privilege: r.Privilege, duration: r.Duration}
	if k.privilege == types.PrivilegeDefault {
		k.privilege = ""
	}
	var waited *flight
	for {
		f, e, leader := c.join(k, p, waited)
		if e != nil {
			return e, nil
		}
		if leader {
			go c.run(ctx, cfg, f, r)
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, &Error{Op: "GetDataAccess", Err: ctx.Err()}
		}
		if f.key == k {
			return f.e, f.err
		}
		if e := f.e; f.err == nil && e.scoped && e.scope.covers(p) && gives(e.key.permission, k.permission) && c.fresh(e, c.o.Now()) {
			return e, nil
		}
		waited = f
	}
}

// join returns held credentials that serve k (whose target is p), else
// the flight to wait for: the one of k, or (unless the request already
// waited for one) one that may cover it, or a new flight of k, which the
// caller runs (leader).
func (c *Cache) join(k entryKey, p path, waited *flight) (f *flight, e *entry, leader bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.lookupLocked(k, p, c.o.Now()); e != nil {
		return nil, e, false
	}
	flights := c.flights[k.user]
	for _, f := range flights {
		if f.key == k {
			return f, nil, false
		}
	}
	if waited == nil && k.privilege == "" {
		for _, f := range flights {
			if f.key.privilege == "" && f.key.duration == k.duration && f.path.bucket == p.bucket && gives(f.key.permission, k.permission) {
				return f, nil, false
			}
		}
	}
	f = &flight{key: k, path: p, done: make(chan struct{})}
	c.flights[k.user] = append(flights, f)
	return f, nil, true
}

// run makes the call of f on a context of its own, detached from ctx, so
// that the request giving up does not fail the others waiting on it.
func (c *Cache) run(ctx context.Context, cfg aws.Config, f *flight, r Request) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.Timeout)
	defer cancel()
	f.e, f.err = c.fetch(ctx, cfg, f.key, r)
	c.mu.Lock()
	flights := c.flights[f.key.user]
	if i := slices.Index(flights, f); i >= 0 {
		flights = slices.Delete(flights, i, i+1)
	}
	if len(flights) == 0 {
		delete(c.flights, f.key.user)
	} else {
		c.flights[f.key.user] = flights
	}
	c.mu.Unlock()
	close(f.done)
}

// userAgent tags the calls of a Cache as tipkit's other AWS calls are.
var userAgent = useragent.Add

// asCaller makes an S3 Control call with the caller's credentials, tagged
// as tipkit's.
func asCaller(cfg aws.Config) func(*s3control.Options) {
	return func(o *s3control.Options) {
		o.Credentials = cfg.Credentials
		o.APIOptions = append(o.APIOptions, userAgent)
	}
}

// fetch calls GetDataAccess for k with the caller's configuration cfg and
// holds what it vends.
func (c *Cache) fetch(ctx context.Context, cfg aws.Config, k entryKey, r Request) (*entry, error) {
	account, err := c.accountID(ctx, cfg)
	if err != nil {
		return nil, err
	}
	in := &s3control.GetDataAccessInput{
		AccountId:  aws.String(account),
		Target:     aws.String(r.Target),
		Permission: r.Permission,
		TargetType: r.TargetType,
		Privilege:  r.Privilege,
	}
	if r.Duration != 0 {
		in.DurationSeconds = aws.Int32(int32(r.Duration / time.Second))
	}
	var client GetDataAccessAPIClient = c.o.DataAccessClient
	if client == nil {
		client = s3control.NewFromConfig(cfg)
	}
	out, err := client.GetDataAccess(ctx, in, asCaller(cfg))
	if err != nil {
		return nil, callError("GetDataAccess", err)
	}
	v := out.Credentials
	if v == nil || v.AccessKeyId == nil || v.SecretAccessKey == nil || v.SessionToken == nil || v.Expiration == nil {
		return nil, &Error{Op: "GetDataAccess", Code: "IncompleteCredentials", Err: errors.New("S3 Access Grants answered without complete credentials")}
	}
	// Cloned: the XML decoder's strings share the buffers of the answer.
	e := &entry{
		key: k,
		provider: credentials.StaticCredentialsProvider{Value: aws.Credentials{
			AccessKeyID:     strings.Clone(*v.AccessKeyId),
			SecretAccessKey: strings.Clone(*v.SecretAccessKey),
			SessionToken:    strings.Clone(*v.SessionToken),
			Source:          "S3AccessGrants",
			CanExpire:       true,
			Expires:         *v.Expiration,
		}},
		expires: *v.Expiration,
	}
	if k.privilege == "" {
		e.scope, e.scoped = parseS3URI(aws.ToString(out.MatchedGrantTarget), false)
	}
	c.hold(e, c.o.Now())
	return e, nil
}

// accountID returns the configured account, else the caller's, asked of
// STS once for all callers.
func (c *Cache) accountID(ctx context.Context, cfg aws.Config) (string, error) {
	if c.o.AccountID != "" {
		return c.o.AccountID, nil
	}
	if id := c.account.id.Load(); id != nil {
		return *id, nil
	}
	v, err, _ := c.account.flight.Do("", func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.Timeout)
		defer cancel()
		id, err := CallerAccount(ctx, cfg)
		if err == nil {
			c.account.id.Store(&id)
		}
		return id, err
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// CallerAccount returns the account of the credentials of cfg, as STS
// GetCallerIdentity tells it. With a caller's configuration
// (ctxcreds.Config), that is the account of the access role, where the S3
// Access Grants instance usually is; it is what a Cache without
// Options.AccountID asks once. With a server's own configuration it is
// the server's account, which may be another.
func CallerAccount(ctx context.Context, cfg aws.Config) (string, error) {
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}, func(o *sts.Options) {
		o.APIOptions = append(o.APIOptions, userAgent)
	})
	if err != nil {
		return "", callError("GetCallerIdentity", err)
	}
	id := aws.ToString(out.Account)
	if !accountPattern.MatchString(id) {
		return "", &Error{Op: "GetCallerIdentity", Code: "NoAccount", Err: errors.New("STS told no account")}
	}
	return id, nil
}

// fresh reports whether e still serves at now.
func (c *Cache) fresh(e *entry, now time.Time) bool {
	return now.Before(e.expires.Add(-c.o.DataAccessExpiryWindow))
}

// lookupLocked returns held credentials of k's user that serve k, whose target
// is p, at now, or nil: those obtained for k itself, else for a request
// of the same privilege (Default), duration and a permission that gives
// k's, whose matched grant scope covers p.
// c.mu is held.
func (c *Cache) lookupLocked(k entryKey, p path, now time.Time) *entry {
	if el, ok := c.entries[k]; ok {
		e := el.Value.(*entry)
		if c.fresh(e, now) {
			c.lru.MoveToFront(el)
			return e
		}
		c.dropLocked(e)
	}
	if k.privilege != "" {
		return nil
	}
	var found *entry
	var stale []*entry
	for _, e := range c.scopes[k.user] {
		switch {
		case !c.fresh(e, now):
			stale = append(stale, e)
		case found == nil && e.key.duration == k.duration && gives(e.key.permission, k.permission) && e.scope.covers(p):
			found = e
		}
	}
	for _, e := range stale {
		c.dropLocked(e)
	}
	if found != nil {
		c.lru.MoveToFront(c.entries[found.key])
	}
	return found
}

// gives reports whether credentials vended for have serve a request of
// want.
func gives(have, want types.Permission) bool {
	return have == want || have == types.PermissionReadwrite
}

// hold keeps e, replacing what was held for its request, and drops the
// least recently used entries beyond MaxEntries. Credentials already
// within the expiry window are not kept.
func (c *Cache) hold(e *entry, now time.Time) {
	if !c.fresh(e, now) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[e.key]; ok {
		c.dropLocked(el.Value.(*entry))
	}
	c.entries[e.key] = c.lru.PushFront(e)
	if e.scoped {
		c.scopes[e.key.user] = append(c.scopes[e.key.user], e)
	}
	for c.lru.Len() > c.o.MaxEntries {
		c.dropLocked(c.lru.Back().Value.(*entry))
	}
}

// dropLocked forgets e.
func (c *Cache) dropLocked(e *entry) {
	el, ok := c.entries[e.key]
	if !ok || el.Value.(*entry) != e {
		return
	}
	c.lru.Remove(el)
	delete(c.entries, e.key)
	if !e.scoped {
		return
	}
	held := c.scopes[e.key.user]
	if i := slices.Index(held, e); i >= 0 {
		held = slices.Delete(held, i, i+1)
	}
	if len(held) == 0 {
		delete(c.scopes, e.key.user)
		return
	}
	c.scopes[e.key.user] = held
}

// Len returns the number of sets of credentials held, all users together.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// Grant is an S3 access grant of the caller, as ListCallerAccessGrants
// lists it.
type Grant struct {
	// Scope is the S3 data the grant covers: "s3://bucket/prefix*" for
	// the keys under a prefix, an object's URI for one object.
	Scope string
	// Permission is READ, WRITE or READWRITE.
	Permission types.Permission
	// ApplicationArn, when set, is the IAM Identity Center application
	// through which alone the grant is used.
	ApplicationArn string
}

// ListCallerAccessGrants returns the S3 access grants of the caller of
// ctx (those of the caller's Identity Center user and of the user's
// groups), every page of them, with the caller's credentials. With a
// scope ("s3://bucket/prefix", any beginning of an S3 path), only the
// grants that S3 Access Grants finds for that path are returned. The
// answer is not held: each call asks S3 Access Grants.
//
// It fails as [Cache.GetDataAccess] does.
func (c *Cache) ListCallerAccessGrants(ctx context.Context, scope string) ([]Grant, error) {
	_, cfg, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if scope != "" && !strings.HasPrefix(scope, "s3://") {
		return nil, fmt.Errorf("%w: grant scope %q: want an S3 path that starts with s3://", ErrRequest, scope)
	}
	account, err := c.accountID(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var client ListCallerAccessGrantsAPIClient = c.o.ListClient
	if client == nil {
		client = s3control.NewFromConfig(cfg)
	}
	in := &s3control.ListCallerAccessGrantsInput{AccountId: aws.String(account), MaxResults: 1000}
	if scope != "" {
		in.GrantScope = aws.String(scope)
	}
	var grants []Grant
	seen := map[string]bool{}
	for {
		out, err := client.ListCallerAccessGrants(ctx, in, asCaller(cfg))
		if err != nil {
			return nil, callError("ListCallerAccessGrants", err)
		}
		for _, g := range out.CallerAccessGrantsList {
			grants = append(grants, Grant{Scope: aws.ToString(g.GrantScope), Permission: g.Permission, ApplicationArn: aws.ToString(g.ApplicationArn)})
		}
		next := aws.ToString(out.NextToken)
		if next == "" || seen[next] {
			return grants, nil
		}
		seen[next] = true
		in.NextToken = aws.String(next)
	}
}
