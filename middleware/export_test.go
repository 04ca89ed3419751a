package middleware

import (
	"crypto/rsa"
	"testing"

	"github.com/tipkit/tipkit/tiptest"
)

// DefaultMaxTokenSize is the default Options.MaxTokenSize, for the tests of
// package middleware_test that build tokens just under or over it.
const DefaultMaxTokenSize = defaultMaxTokenSize

// IdPRSAKey is idpRSAKey, for the tests of package middleware_test.
func IdPRSAKey(t testing.TB, idp *tiptest.IdP) *rsa.PublicKey { return idpRSAKey(t, idp) }
