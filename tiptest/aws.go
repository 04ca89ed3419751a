package tiptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Defaults of AWSOptions.
const (
	awsDefaultRegion          = "us-east-1"
	awsDefaultAccountID       = "123456789012"
	awsDefaultTokenTTL        = time.Hour
	awsDefaultRefreshTokenTTL = 24 * time.Hour
	awsDefaultHTTPTimeout     = 10 * time.Second
	awsMaxAudiences           = 10
	// awsMaxBody bounds the request bodies the local AWS reads.
	awsMaxBody = 1 << 20
)

// The fixed names of the resources the local AWS models.
const (
	identityCenterInstance = "ssoins-7223a5f0e0c6f1b2"
	identityCenterAppID    = "apl-0a1b2c3d4e5f6a7b"
	serverUserName         = "tipkit-server"
	accessRoleName         = "tipkit-access"
	applicationRoleName    = "tipkit-application"
	accessRoleMaxSession   = 43200
	appRoleMaxSession      = 3600
	// identityCenterProvider is the ProviderArn of an Identity Center
	// identity context in AssumeRole's ProvidedContexts.
	identityCenterProvider = "arn:aws:iam::aws:contextProvider/IdentityCenter"
	// identityCenterIssuer is the iss of the idToken of CreateTokenWithIAM.
	identityCenterIssuer = "https://identitycenter.amazonaws.com/" + identityCenterInstance
)

// The operations the local AWS serves, as named by AWS.Calls.
const (
	opCreateTokenWithIAM        = "CreateTokenWithIAM"
	opAssumeRole                = "AssumeRole"
	opAssumeRoleWithWebIdentity = "AssumeRoleWithWebIdentity"
	opGetCallerIdentity         = "GetCallerIdentity"
)

var (
	regionPattern  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	accountPattern = regexp.MustCompile(`^[0-9]{12}$`)
)

// AWSOptions configures NewAWS. Issuer and Audiences are required; every
// other field has a default.
type AWSOptions struct {
	// Clock gives the time of credential, token, identity-context and
	// refresh-token expiry. Nil means NewClock().
	Clock *Clock
	// Region is the region of STS and of the Identity Center instance.
	// Empty means "us-east-1".
	Region string
	// AccountID is the 12-digit account of every ARN. Empty means
	// "123456789012".
	AccountID string
	// Issuer is the URL of the identity provider: the IAM OIDC identity
	// provider that AssumeRoleWithWebIdentity trusts, and the issuer URL
	// of the trusted token issuer to begin with (Setup.IssuerURL). A
	// token's iss claim must equal it exactly (a trailing slash matters).
	// Its keys are found through Issuer+"/.well-known/openid-configuration".
	Issuer string
	// Audiences are the audiences of the IAM OIDC identity provider, and
	// those the application authorises to begin with (Setup.Audiences): 1
	// to 10; a token's aud must contain one of them.
	Audiences []string
	// RefreshGrant gives the application the refresh_token grant to begin
	// with (Setup.RefreshGrant): CreateTokenWithIAM then returns refresh
	// tokens and accepts them.
	RefreshGrant bool
	// TokenTTL is the lifetime of the Identity Center access token and of
	// the identity context. Zero means one hour.
	TokenTTL time.Duration
	// RefreshTokenTTL is the lifetime of a refresh token. Zero means 24
	// hours.
	RefreshTokenTTL time.Duration
	// OmitIdentityContextField makes CreateTokenWithIAM answer without
	// awsAdditionalDetails: the identity context is then only in the
	// sts:identity_context claim of the idToken.
	OmitIdentityContextField bool
	// HTTPClient fetches the issuer's discovery document and JWKS. Nil
	// means a client with a 10 s timeout.
	HTTPClient *http.Client
}

// AWS is a local AWS serving, on one HTTP server on 127.0.0.1, STS
// (awsQuery, POST /), IAM Identity Center SSO OIDC (restJson1,
// POST /token?aws_iam=t), the read operations of IAM Identity Center's
// administration (sso-admin DescribeApplication, GetApplicationGrant and
// DescribeTrustedTokenIssuer; awsJson1_1, POST / with X-Amz-Target) and of
// IAM (GetRole; awsQuery, POST /, signed for us-east-1 as IAM is), S3
// Access Grants (S3 Control GetDataAccess, restXml, on the host of the
// account; see HTTPClient) and a small S3 (restXml, path-style
// ListObjectsV2, GetObject, HeadObject and PutObject; see CreateBucket and
// Grant), and, when HandleControl is given one, a handler of the test's
// own under ControlPath. It models one account with:
//
//   - the IAM user "tipkit-server", whose long-term keys are
//     ServerCredentials;
//   - an Identity Center instance with one application (ApplicationArn),
//     whose JWT bearer grant authorises one trusted token issuer
//     (TrustedTokenIssuerArn, issuer URL AWSOptions.Issuer) for
//     AWSOptions.Audiences, and whose users are found by the email claim
//     of the token (user name: the part before "@"); every user exists
//     unless removed with RemoveUser; Configure sets all of this up
//     otherwise (see Setup);
//   - the role "tipkit-application" (ApplicationRoleArn, at most 3600 s),
//     assumable with AssumeRoleWithWebIdentity by a token of the issuer;
//   - the role "tipkit-access" (AccessRoleArn, at most 43200 s), assumable
//     with AssumeRole, with an Identity Center identity context, by the
//     server user and by sessions of the application role, whose trust
//     policy allows sts:AssumeRole, sts:SetContext, sts:TagSession and
//     sts:SetSourceIdentity (GetRole shows it), with session tags, a
//     source identity and session policies (see AWS.Session);
//   - an S3 Access Grants instance associated with the Identity Center
//     instance, whose grants (Grant, GrantGroup) name Identity Center
//     users and groups, and whose location role "tipkit-access-grants-location"
//     GetDataAccess vends sessions of, scoped to a grant;
//   - S3 buckets whose objects only those sessions reach: GetDataAccess
//     vends them only to identity-enhanced sessions of the access role.
//
// Every signed request is verified with SigV4 against the credentials the
// local AWS issued. All methods are safe for concurrent use.
type AWS struct {
	clock       *Clock
	region      string
	account     string
	provider    tokenTrust // the IAM OIDC identity provider STS trusts
	httpClient  *http.Client
	tokenTTL    time.Duration
	refreshTTL  time.Duration
	omitContext bool
	ttiID       string    // id of the trusted token issuer
	created     time.Time // creation date of the application and roles

	srv    *httptest.Server
	closed chan struct{}
	once   sync.Once

	server      *principal
	accessRole  roleModel
	appRole     roleModel
	secret      []byte            // HMAC key of identity contexts and user ids
	idTokenKey  *ecdsa.PrivateKey // signs the idToken of CreateTokenWithIAM
	idTokenKid  string
	stsVerifier *sigv4Verifier
	ssoVerifier *sigv4Verifier
	iamVerifier *sigv4Verifier
	admVerifier *sigv4Verifier // sso-admin
	s3          *s3Store

	mu         sync.Mutex
	setup      Setup                 // see Configure
	ttiKeys    *issuerKeys           // keys of setup.IssuerURL
	principals map[string]*principal // by access key id
	removed    map[string]bool       // Identity Center users removed
	jtis       map[string]time.Time  // jti => when it was exchanged
	refresh    map[string]*refreshTokenState
	calls      map[string]int
	agents     map[string]string
	faults     map[string]*faultState
	control    http.Handler // see HandleControl
}

// roleModel is an IAM role of the model.
type roleModel struct {
	name       string
	id         string // AROA...
	maxSession int    // seconds
}

// principal is the holder of a set of credentials issued by the local AWS.
type principal struct {
	accessKeyID string
	secret      string
	token       string    // empty for the IAM user
	expires     time.Time // zero for the IAM user
	arn         string
	userID      string
	role        string // role name of a role session; empty for the IAM user
	user        string // Identity Center user of an identity-enhanced session
	shape       sessionShape
}

// NewAWS validates o, generates the server user's keys and starts the HTTP
// server on a free port of 127.0.0.1. Call Close to stop it.
func NewAWS(o AWSOptions) (*AWS, error) {
	if err := o.resolve(); err != nil {
		return nil, err
	}
	idKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tiptest: generate idToken key: %w", err)
	}
	providerKeys := newIssuerKeys(o.Issuer, o.HTTPClient)
	a := &AWS{
		clock: o.Clock, region: o.Region, account: o.AccountID,
		provider:   tokenTrust{issuer: o.Issuer, audiences: slices.Clone(o.Audiences), keys: providerKeys},
		httpClient: o.HTTPClient,
		tokenTTL:   o.TokenTTL, refreshTTL: o.RefreshTokenTTL, omitContext: o.OmitIdentityContextField,
		ttiID:      newTTIID(),
		created:    o.Clock.Now().Truncate(time.Second),
		setup:      defaultSetup(o),
		ttiKeys:    providerKeys,
		closed:     make(chan struct{}),
		accessRole: roleModel{name: accessRoleName, id: "AROA" + randomID(17), maxSession: accessRoleMaxSession},
		appRole:    roleModel{name: applicationRoleName, id: "AROA" + randomID(17), maxSession: appRoleMaxSession},
		secret:     randomBytes(32),
		idTokenKey: idKey,
		idTokenKid: randomID(20),
		principals: map[string]*principal{},
		removed:    map[string]bool{},
		jtis:       map[string]time.Time{},
		refresh:    map[string]*refreshTokenState{},
		calls:      map[string]int{},
		agents:     map[string]string{},
		faults:     map[string]*faultState{},
	}
	a.server = &principal{
		accessKeyID: "AKIA" + randomID(16),
		secret:      randomSecret(),
		arn:         a.arn("iam", "user/"+serverUserName),
		userID:      "AIDA" + randomID(17),
	}
	a.principals[a.server.accessKeyID] = a.server
	a.stsVerifier = a.newVerifier("sts")
	a.ssoVerifier = a.newVerifier("sso-oauth")
	a.admVerifier = a.newVerifier("sso")
	a.iamVerifier = a.newVerifier("iam")
	a.iamVerifier.region = iamSigningRegion
	a.s3 = newS3Store(a.newVerifier("s3"))
	a.srv = httptest.NewServer(http.HandlerFunc(a.serveHTTP))
	return a, nil
}

// resolve validates o and fills in its defaults.
func (o *AWSOptions) resolve() error {
	if o.Clock == nil {
		o.Clock = NewClock()
	}
	o.Region = orDefault(o.Region, awsDefaultRegion)
	o.AccountID = orDefault(o.AccountID, awsDefaultAccountID)
	if o.TokenTTL == 0 {
		o.TokenTTL = awsDefaultTokenTTL
	}
	if o.RefreshTokenTTL == 0 {
		o.RefreshTokenTTL = awsDefaultRefreshTokenTTL
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: awsDefaultHTTPTimeout}
	}
	switch {
	case !regionPattern.MatchString(o.Region):
		return fmt.Errorf("tiptest: AWSOptions.Region %q is not a region name", o.Region)
	case !accountPattern.MatchString(o.AccountID):
		return fmt.Errorf("tiptest: AWSOptions.AccountID %q is not 12 digits", o.AccountID)
	case o.Issuer == "":
		return errors.New("tiptest: AWSOptions.Issuer is required")
	case len(o.Audiences) == 0 || len(o.Audiences) > awsMaxAudiences:
		return fmt.Errorf("tiptest: AWSOptions.Audiences needs 1 to %d audiences, got %d", awsMaxAudiences, len(o.Audiences))
	case o.TokenTTL < 0 || o.RefreshTokenTTL < 0:
		return errors.New("tiptest: AWSOptions.TokenTTL and RefreshTokenTTL must not be negative")
	}
	for _, aud := range o.Audiences {
		if aud == "" {
			return errors.New("tiptest: AWSOptions.Audiences holds an empty audience")
		}
	}
	return nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// newVerifier returns the SigV4 verifier of service.
func (a *AWS) newVerifier(service string) *sigv4Verifier {
	return &sigv4Verifier{
		service:  service,
		region:   a.region,
		wallNow:  time.Now,
		clockNow: a.clock.Now,
		lookup:   a.lookupCreds,
	}
}

// lookupCreds gives the verifier the credentials of an access key id.
func (a *AWS) lookupCreds(accessKeyID string) (sigv4Creds, bool) {
	p := a.principal(accessKeyID)
	if p == nil {
		return sigv4Creds{}, false
	}
	return sigv4Creds{secret: p.secret, token: p.token, expires: p.expires}, true
}

// principal returns the holder of accessKeyID, or nil.
func (a *AWS) principal(accessKeyID string) *principal {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.principals[accessKeyID]
}

// Close stops the HTTP server; requests waiting on a Fault's latency end
// at once. It is safe to call more than once.
func (a *AWS) Close() {
	a.once.Do(func() {
		close(a.closed)
		a.srv.Close()
	})
}

// URL returns the base URL of the local AWS, "http://127.0.0.1:PORT", to
// use as aws.Config.BaseEndpoint of the sts, ssooidc, ssoadmin, iam, s3 and
// s3control clients (the iam client with Region "us-east-1", IAM's signing
// region; the s3 client with UsePathStyle, the s3control client with
// HTTPClient).
func (a *AWS) URL() string { return a.srv.URL }

// Region returns the region of STS and of the Identity Center instance.
func (a *AWS) Region() string { return a.region }

// AccountID returns the account of every ARN of the model.
func (a *AWS) AccountID() string { return a.account }

// ApplicationArn returns the ARN of the Identity Center application, the
// clientId of CreateTokenWithIAM.
func (a *AWS) ApplicationArn() string {
	return "arn:aws:sso::" + a.account + ":application/" + identityCenterInstance + "/" + identityCenterAppID
}

// AccessRoleArn returns the ARN of the role that AssumeRole gives
// identity-enhanced sessions of (at most 43200 s).
func (a *AWS) AccessRoleArn() string { return a.arn("iam", "role/"+accessRoleName) }

// ApplicationRoleArn returns the ARN of the role that
// AssumeRoleWithWebIdentity assumes with a token of the issuer (at most
// 3600 s).
func (a *AWS) ApplicationRoleArn() string { return a.arn("iam", "role/"+applicationRoleName) }

// ServerUserArn returns the ARN of the IAM user whose keys are
// ServerCredentials.
func (a *AWS) ServerUserArn() string { return a.server.arn }

// arn builds an ARN of the account.
func (a *AWS) arn(service, resource string) string {
	return "arn:aws:" + service + "::" + a.account + ":" + resource
}

// ServerCredentials returns the long-term access key of the IAM user
// "tipkit-server", random for each AWS. They never expire.
func (a *AWS) ServerCredentials() aws.Credentials {
	return aws.Credentials{
		AccessKeyID:     a.server.accessKeyID,
		SecretAccessKey: a.server.secret,
		Source:          "tiptest",
	}
}

// CallCounts returns every counter of Calls, by operation: a copy, with
// the operations that received no request left out.
func (a *AWS) CallCounts() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.calls)
}

// Calls returns how many requests op received, refused or not: op is
// "CreateTokenWithIAM", "AssumeRole", "AssumeRoleWithWebIdentity",
// "GetCallerIdentity", "GetDataAccess", "ListCallerAccessGrants",
// "DescribeApplication", "GetApplicationGrant",
// "DescribeTrustedTokenIssuer", "GetRole", or one of the S3 operations
// "ListObjectsV2", "GetObject", "PutObject" and "HeadObject". Any other STS or IAM Action and sso-admin operation is
// counted under its name, a POST /token without aws_iam=t under
// "CreateToken", an S3 request the local S3 does not serve under the x-id
// query parameter the SDK sends, else a name such as "DeleteObject", and
// another S3 Control request under "S3Control METHOD PATH".
func (a *AWS) Calls(op string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[op]
}

// LastUserAgent returns the User-Agent header of the last request op
// received, or "".
func (a *AWS) LastUserAgent(op string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.agents[op]
}

// UserFor returns the Identity Center user whose identity context the
// credentials of accessKeyID were issued with (by AssumeRole with
// ProvidedContexts). It reports false for unknown keys and for credentials
// that carry no user.
func (a *AWS) UserFor(accessKeyID string) (string, bool) {
	p := a.principal(accessKeyID)
	if p == nil || p.user == "" {
		return "", false
	}
	return p.user, true
}

// RemoveUser removes the Identity Center user name from the directory:
// CreateTokenWithIAM then refuses the user's tokens and refresh tokens with
// InvalidGrantException. Identity contexts already issued stay valid until
// they expire, as in AWS.
func (a *AWS) RemoveUser(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.removed[name] = true
}

// AddUser undoes RemoveUser.
func (a *AWS) AddUser(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.removed, name)
}

// userRemoved reports whether name was removed from the directory.
func (a *AWS) userRemoved(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.removed[name]
}

// record counts a request of op and remembers its User-Agent.
func (a *AWS) record(op string, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls[op]++
	a.agents[op] = r.UserAgent()
}

// ControlPath is the path prefix of the requests that AWS.HandleControl
// gives to a handler of the test's own. No request of an API the local AWS
// serves has a path under it: STS, IAM and sso-admin use "/", SSO OIDC
// "/token", S3 Control "/v20180820/", and an S3 bucket name cannot hold
// an underscore.
const ControlPath = "/_tiptest/"

// HandleControl makes the AWS's server pass the requests whose path starts
// with ControlPath to h, whatever their method, host or headers, instead
// of refusing them as AWS would. It is the place of controls a test serves
// to programs of other languages, such as the fault endpoint of
// cmd/tiptest. A nil h removes the handler.
func (a *AWS) HandleControl(h http.Handler) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.control = h
}

// controlHandler returns the handler of HandleControl, or nil.
func (a *AWS) controlHandler() http.Handler {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.control
}

// serveHTTP dispatches ControlPath to the handler of HandleControl, when
// there is one, S3 by the credential scope (see isS3Request), sso-admin by
// its X-Amz-Target, IAM by the API version of its awsQuery form, then the
// rest by path: "/" is STS, "/token" is SSO OIDC.
func (a *AWS) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, ControlPath) {
		if h := a.controlHandler(); h != nil {
			h.ServeHTTP(w, r)
			return
		}
	}
	if isS3Request(r) {
		a.serveS3(w, r)
		return
	}
	requestID := newRequestID()
	w.Header().Set("X-Amzn-Requestid", requestID)
	switch {
	case isSSOAdminRequest(r):
		a.serveSSOAdmin(w, r)
		return
	case isIAMRequest(w, r):
		a.serveIAM(w, r, requestID)
		return
	}
	switch r.URL.Path {
	case "/":
		a.serveSTS(w, r, requestID)
	case "/token":
		a.serveOIDC(w, r)
	default:
		writeOIDCError(w, newAPIError("UnknownOperationException", "Unknown operation "+r.Method+" "+r.URL.Path))
	}
}

// readBody reads at most awsMaxBody bytes of the request body.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(w, r.Body, awsMaxBody))
}

// issueCredentials stores and returns new temporary credentials of a
// session of role.
func (a *AWS) issueCredentials(role roleModel, session string, d time.Duration, user string) *principal {
	return a.issueShaped(role, session, d, user, sessionShape{})
}

// issueShaped is issueCredentials for a session shaped by its AssumeRole.
func (a *AWS) issueShaped(role roleModel, session string, d time.Duration, user string, shape sessionShape) *principal {
	p := &principal{
		shape:       shape,
		accessKeyID: "ASIA" + randomID(16),
		secret:      randomSecret(),
		token:       randomToken("IQoJb3JpZ2luX2Vj", 256),
		expires:     a.clock.Now().Add(d).Truncate(time.Second),
		arn:         "arn:aws:sts::" + a.account + ":assumed-role/" + role.name + "/" + session,
		userID:      role.id + ":" + session,
		role:        role.name,
		user:        user,
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.principals[p.accessKeyID] = p
	return p
}

// mayUseApplication reports whether p is allowed by the application's
// authentication policy and by the access role's trust policy: the server
// user and sessions of the application role.
func (a *AWS) mayUseApplication(p *principal) bool {
	return p == a.server || p.role == applicationRoleName
}
