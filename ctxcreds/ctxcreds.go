// Package ctxcreds carries the calling user's AWS configuration and identity
// through a request's context.
//
// A server that acts on AWS as the user who calls it puts the user's
// identity-enhanced aws.Config into the request context once the user's token
// is verified and exchanged; handlers read it back with [Config] and hand it
// to any AWS service client:
//
//	cfg, ok := ctxcreds.Config(r.Context())
//	if !ok {
//		http.Error(w, "not signed in", http.StatusUnauthorized)
//		return
//	}
//	client := s3.NewFromConfig(cfg)
//
// Reading either value never allocates.
package ctxcreds

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Unexported key types: no other package can read or overwrite these values
// except through the functions below.
type (
	configKey   struct{}
	identityKey struct{}
)

// WithConfig returns a copy of ctx that carries cfg, the AWS configuration
// whose credentials belong to the caller of the current request.
func WithConfig(ctx context.Context, cfg *aws.Config) context.Context {
	return context.WithValue(ctx, configKey{}, cfg)
}

// Config returns the caller's AWS configuration stored by [WithConfig], and
// whether there was one. The returned value is a copy: changing it does not
// change what later readers of ctx see (slices and maps inside it, such as
// APIOptions, are shared and must not be modified in place).
func Config(ctx context.Context) (aws.Config, bool) {
	cfg, ok := ctx.Value(configKey{}).(*aws.Config)
	if !ok || cfg == nil {
		return aws.Config{}, false
	}
	return *cfg, true
}

// Identity describes the verified caller of a request.
type Identity struct {
	// Issuer is the iss claim of the caller's verified token.
	Issuer string
	// Subject is the sub claim of the caller's verified token. Together with
	// Issuer it names one user.
	Subject string
	// Claims holds the verified claims of the token. Treat it as read-only:
	// it may be shared between requests of the same token.
	Claims map[string]any
	// Expires is when the caller's AWS credentials expire; the zero time when
	// no credentials were obtained.
	Expires time.Time
}

// WithIdentity returns a copy of ctx that carries id. A nil id is stored as
// no identity.
func WithIdentity(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityFrom returns the identity stored by [WithIdentity], and whether
// there was one. The returned pointer is shared: do not modify what it
// points to.
func IdentityFrom(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(*Identity)
	return id, ok && id != nil
}
