// Package accessgrants gives a request's caller S3 access through S3
// Access Grants, the way AWS grants S3 data to the users of IAM Identity
// Center.
//
// S3 does not authorise an identity-enhanced session itself. The session
// (the caller's aws.Config, [ctxcreds.Config]) asks S3 Access Grants, with
// S3 Control GetDataAccess, for credentials for the S3 data it needs; S3
// Access Grants matches the request to the grants of the session's
// Identity Center user (and of the user's groups) and vends temporary
// credentials scoped to the matching grant, which then call S3. A [Cache]
// does that for a server of many users: it keeps the vended credentials of
// each user until shortly before they expire, serves a later request of
// the same user within the same grant from them, merges a user's
// concurrent requests within one grant into one call, and holds a bounded number of
// credentials, the least recently used dropped first. Credentials are
// kept per user (the issuer and subject of the caller's verified token,
// [ctxcreds.IdentityFrom]) and are never handed to another user; a
// context without an identity is refused.
//
// Behind tipkit's middleware, one S3 client, built once, serves every
// caller: each operation is signed with the caller's credentials for its
// own target and permission ([Cache.S3Client]), and [HTTPStatus] answers
// its errors:
//
//	grants, err := accessgrants.New(accessgrants.Options{
//		AccountID: "111122223333", // the account of the S3 Access Grants instance
//	})
//	if err != nil {
//		log.Fatal(err)
//	}
//	client := grants.S3Client(cfg) // cfg: region, endpoint, HTTP client; its credentials are never used
//	mux := http.NewServeMux()
//	mux.HandleFunc("GET /files/{key...}", func(w http.ResponseWriter, r *http.Request) {
//		obj, err := client.GetObject(r.Context(), &s3.GetObjectInput{
//			Bucket: aws.String("amzn-s3-demo-bucket"),
//			Key:    aws.String(r.PathValue("key")),
//		})
//		if err != nil {
//			http.Error(w, http.StatusText(accessgrants.HTTPStatus(err)), accessgrants.HTTPStatus(err))
//			return
//		}
//		defer obj.Body.Close()
//		_, _ = io.Copy(w, obj.Body)
//	})
//	log.Fatal(http.ListenAndServe(":8080", mw.Handler(mux))) // mw: tipkit's middleware
//
// [Cache.GetDataAccess] is the step beneath: an aws.Config with the
// caller's credentials for one [Request] ([Object], [Prefix]), for an S3
// client of the handler's own or another SDK.
//
// The access role needs s3:GetDataAccess (and s3:ListCallerAccessGrants to
// list) on the instance, arn:aws:s3:REGION:ACCOUNT:access-grants/default,
// and the grants name the users by their IAM Identity Center user ID,
// which [ctxcreds.Identity.AWSUserID] tells a handler.
// [Cache.ListCallerAccessGrants] lists what the caller may reach.
//
// Errors a caller branches on: [ErrDenied] (S3 Access Grants refused the
// caller: no grant covers the request), [ErrNoCaller] (the context holds
// no caller), [ErrRequest] and [ErrUnsupported] (an S3 operation the
// client of S3Client does not sign). Other failures are an [*Error] wrapping the
// AWS SDK's error. No error holds a credential.
package accessgrants
