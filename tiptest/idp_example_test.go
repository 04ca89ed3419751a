package tiptest_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tipkit/tipkit/tiptest"
)

// idpClaimsOf decodes the claims of a JWT without verifying it.
func idpClaimsOf(token string) map[string]any {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var claims map[string]any
	if json.Unmarshal(b, &claims) != nil {
		return nil
	}
	return claims
}

// idpKeyCount fetches the JWKS and returns how many keys it holds.
func idpKeyCount(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if json.NewDecoder(resp.Body).Decode(&set) != nil {
		return -1
	}
	return len(set.Keys)
}

func ExampleNewIdP() {
	idp, err := tiptest.NewIdP(tiptest.IdPOptions{Audience: "my-app"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer idp.Close()

	resp, err := http.Get(idp.Issuer() + "/.well-known/openid-configuration")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var doc struct {
		Issuer  string   `json:"issuer"`
		JWKSURI string   `json:"jwks_uri"`
		Algs    []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("issuer matches:", doc.Issuer == idp.Issuer())
	fmt.Println("jwks_uri matches:", doc.JWKSURI == idp.JWKSURL())
	fmt.Println("algorithms:", doc.Algs)
	fmt.Println("audience:", idp.Audience())
	// Output:
	// issuer matches: true
	// jwks_uri matches: true
	// algorithms: [RS256 ES256 EdDSA]
	// audience: my-app
}

func ExampleIdP_Token() {
	idp, err := tiptest.NewIdP(tiptest.IdPOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer idp.Close()

	token := idp.Token("alice",
		tiptest.WithAlg("ES256"),
		tiptest.WithLifetime(15*time.Minute),
		tiptest.WithClaims(map[string]any{"groups": []string{"admins"}, "name": nil}),
	)
	claims := idpClaimsOf(token)
	fmt.Println("sub:", claims["sub"])
	fmt.Println("email:", claims["email"])
	fmt.Println("aud:", claims["aud"])
	fmt.Println("iss is the issuer:", claims["iss"] == idp.Issuer())
	fmt.Println("lifetime:", time.Duration(claims["exp"].(float64)-claims["iat"].(float64))*time.Second)
	fmt.Println("groups:", claims["groups"])
	_, hasName := claims["name"]
	fmt.Println("has name:", hasName)
	// Output:
	// sub: alice
	// email: alice@example.com
	// aud: tipkit-test
	// iss is the issuer: true
	// lifetime: 15m0s
	// groups: [admins]
	// has name: false
}

func ExampleIdP_RotateKeys() {
	idp, err := tiptest.NewIdP(tiptest.IdPOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer idp.Close()

	fmt.Println("keys at start:", idpKeyCount(idp.JWKSURL()))
	idp.RotateKeys()
	fmt.Println("keys after RotateKeys:", idpKeyCount(idp.JWKSURL()))
	idp.RetireOldKeys()
	fmt.Println("keys after RetireOldKeys:", idpKeyCount(idp.JWKSURL()))
	// Output:
	// keys at start: 3
	// keys after RotateKeys: 6
	// keys after RetireOldKeys: 3
}

func ExampleClock() {
	clock := tiptest.NewClock()
	idp, err := tiptest.NewIdP(tiptest.IdPOptions{Clock: clock})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer idp.Close()

	exp := int64(idpClaimsOf(idp.Token("alice"))["exp"].(float64))
	fmt.Println("expired now:", clock.Now().Unix() >= exp)
	clock.Advance(2 * time.Hour)
	fmt.Println("expired two hours later:", clock.Now().Unix() >= exp)
	// Output:
	// expired now: false
	// expired two hours later: true
}
