// Package verify checks OpenID Connect tokens (JWS-signed JWTs) against
// the key sets of trusted issuers, before anything else is done with
// them: multi-issuer, OIDC discovery or explicit key set URLs, keys fetched
// lazily and refreshed (hourly, and once for a token naming an unknown key,
// rate limited and detached from the request), and a memory of verified
// tokens so that a token presented again is accepted without a signature
// check or an allocation.
//
//	v, err := verify.New(ctx, verify.Options{
//		Issuers: []verify.Issuer{{
//			Issuer:   "https://idp.example.com", // the exact iss, as IAM Identity Center's trusted token issuer has it
//			Audience: []string{"my-api"},
//		}},
//	})
//	if err != nil {
//		return err
//	}
//	defer v.Close()
//	claims, err := v.Verify(ctx, token)
//	switch {
//	case errors.Is(err, verify.ErrUnavailable):
//		// the issuer's keys cannot be fetched now: answer 503, retry later
//	case err != nil:
//		// answer 401: bring another token
//	default:
//		fmt.Println(claims.Issuer, claims.Subject)
//	}
//
// A [Verifier] is used through [Verifier.Verify], in the manner of go-oidc's
// IDTokenVerifier; [Verifier.Remembered] is a lookup of tokens Verify
// accepted before, for a server's hot path, and checks nothing else. Its errors are [*Error] values that match
// [ErrInvalid] (bring another token) or [ErrUnavailable] (the issuer's keys
// cannot be had now: retry later) with errors.Is; their descriptions never
// hold the token. The middleware package maps them to HTTP and gRPC
// answers.
//
// What is checked, and why:
//
//   - The token picks its issuer by iss, never its key: keys come only from
//     that issuer's key set, by kid; jku, x5u, x5c and jwk headers are
//     ignored. An issuer must be configured exactly (a trailing slash
//     counts), as IAM Identity Center matches it.
//   - Only asymmetric algorithms; none and HMAC are refused at New.
//   - exp is required; exp, nbf and iat hold within Leeway; aud contains
//     one of the issuer's audiences; sub is a non-empty string.
//   - A refresh that removes or changes a key makes every token remembered
//     for that issuer go through a full verification again.
package verify
