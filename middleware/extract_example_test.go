package middleware_test

import (
	"fmt"
	"net/http/httptest"

	"github.com/tipkit/tipkit/middleware"
)

func ExampleBearerExtractor() {
	for _, auth := range []string{"Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "Basic dXNlcjpwYXNz", "Bearer"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", auth)
		token, err := middleware.BearerExtractor(r)
		fmt.Printf("%q %v\n", token, err)
	}
	// Output:
	// "eyJhbGciOiJSUzI1NiJ9.e30.c2ln" <nil>
	// "" <nil>
	// "" middleware: invalid_request: the credentials header holds no token
}
