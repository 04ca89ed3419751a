package tiptest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math/big"

	"github.com/golang-jwt/jwt/v5"
)

// The signing algorithms of the local IdP.
const (
	algRS256 = "RS256"
	algES256 = "ES256"
	algEdDSA = "EdDSA"
)

// idpAlgs lists the algorithms the IdP signs with, in the order their keys
// are published.
var idpAlgs = []string{algRS256, algES256, algEdDSA}

// signingKey is one private key of the IdP with its public JWK.
type signingKey struct {
	alg    string
	kid    string
	method jwt.SigningMethod
	priv   any // *rsa.PrivateKey, *ecdsa.PrivateKey or ed25519.PrivateKey
	jwk    jwk
}

// jwk is the public JSON Web Key (RFC 7517, 7518, 8037) of a signing key.
type jwk struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Crv string `json:"crv,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
}

// jwkSet is the JSON document served at the JWKS URL.
type jwkSet struct {
	Keys []jwk `json:"keys"`
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// newSigningKey generates a fresh key for alg. Its kid is the RFC 7638
// thumbprint of the public key.
func newSigningKey(alg string) (*signingKey, error) {
	k := &signingKey{alg: alg}
	var thumb string
	switch alg {
	case algRS256:
		priv, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("tiptest: generate RSA key: %w", err)
		}
		k.priv, k.method = priv, jwt.SigningMethodRS256
		n := b64(priv.N.Bytes())
		e := b64(big.NewInt(int64(priv.E)).Bytes())
		k.jwk = jwk{Kty: "RSA", N: n, E: e}
		thumb = `{"e":"` + e + `","kty":"RSA","n":"` + n + `"}`
	case algES256:
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("tiptest: generate EC key: %w", err)
		}
		pt, err := priv.PublicKey.Bytes() // 0x04 || X (32 bytes) || Y (32 bytes)
		if err != nil || len(pt) != 65 {
			return nil, fmt.Errorf("tiptest: encode EC key: %v", err)
		}
		k.priv, k.method = priv, jwt.SigningMethodES256
		x, y := b64(pt[1:33]), b64(pt[33:65])
		k.jwk = jwk{Kty: "EC", Crv: "P-256", X: x, Y: y}
		thumb = `{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`
	case algEdDSA:
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("tiptest: generate Ed25519 key: %w", err)
		}
		k.priv, k.method = priv, jwt.SigningMethodEdDSA
		x := b64(pub)
		k.jwk = jwk{Kty: "OKP", Crv: "Ed25519", X: x}
		thumb = `{"crv":"Ed25519","kty":"OKP","x":"` + x + `"}`
	default:
		return nil, fmt.Errorf("tiptest: unsupported signing algorithm %q", alg)
	}
	sum := sha256.Sum256([]byte(thumb))
	k.kid = b64(sum[:])
	k.jwk.Use, k.jwk.Alg, k.jwk.Kid = "sig", alg, k.kid
	return k, nil
}

// knownAlg reports whether the IdP signs with alg.
func knownAlg(alg string) bool {
	for _, a := range idpAlgs {
		if a == alg {
			return true
		}
	}
	return false
}
