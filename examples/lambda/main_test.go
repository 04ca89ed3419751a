package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tipkit/tipkit/dynamostore/dynamotest"
	"github.com/tipkit/tipkit/examples/internal/demo"
)

// TestSelfTest runs the function's -selftest in-process, as CI runs it:
// three instances and a cold fourth on one table of a dynalite, two users,
// each exchanged once. It skips, as dynamotest does, when dynalite is not
// installed (and fails when TIPKIT_REQUIRE_DYNALITE is 1).
func TestSelfTest(t *testing.T) {
	srv := dynamotest.Start(t) // skips or fails without dynalite
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := selfTest(ctx, &out, srv.Endpoint()); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"2 CreateTokenWithIAM, 2 AssumeRole", "i4 made no CreateTokenWithIAM", "cold-start cost:", "OK:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the self-test output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestSettingsFromEnv checks the function's own variables: the table is
// required, and the key must be the base64 of 32 bytes, which an error
// never quotes.
func TestSettingsFromEnv(t *testing.T) {
	full := map[string]string{
		demo.EnvIssuer:         "https://idp.example.com",
		demo.EnvAudience:       "app",
		demo.EnvApplicationArn: "arn:aws:sso::111122223333:application/ssoins-1/apl-1",
		demo.EnvAccessRoleArn:  "arn:aws:iam::111122223333:role/UserAccess",
		demo.EnvRegion:         "us-east-1",
		EnvTable:               "tipkit-sessions",
		EnvEncryptionKey:       base64.StdEncoding.EncodeToString(make([]byte, 32)),
	}
	s, err := settingsFromEnv(mapEnv(full))
	if err != nil || s.Table != "tipkit-sessions" || len(s.Key) != 32 || s.StoreTimeout != 0 {
		t.Fatalf("settings %+v, err %v", s, err)
	}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for kk, vv := range full {
			m[kk] = vv
		}
		m[k] = v
		return m
	}
	if _, err := settingsFromEnv(mapEnv(with(EnvTable, ""))); err == nil || !strings.Contains(err.Error(), EnvTable) {
		t.Errorf("no table: err = %v", err)
	}
	short := base64.StdEncoding.EncodeToString([]byte("sixteen byte key"))
	for _, bad := range []string{"", "not base64!", short} {
		_, err := settingsFromEnv(mapEnv(with(EnvEncryptionKey, bad)))
		if err == nil || !strings.Contains(err.Error(), EnvEncryptionKey) || (bad != "" && strings.Contains(err.Error(), bad)) {
			t.Errorf("key %q: err = %v", bad, err)
		}
	}
	if _, err := settingsFromEnv(mapEnv(nil)); !errors.Is(err, demo.ErrNoSettings) || !strings.Contains(err.Error(), EnvTable) {
		t.Errorf("empty environment: err = %v", err)
	}
}

// TestFromEnvMakesNoNetworkCall builds the function's middleware as its
// initialisation does, with the identity provider and every AWS endpoint
// on a server that counts what it is asked: nothing, until the first
// request.
func TestFromEnvMakesNoNetworkCall(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDNOCALL")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "no-call-secret")
	t.Setenv("AWS_ENDPOINT_URL", srv.URL)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	env := map[string]string{
		demo.EnvIssuer:         srv.URL,
		demo.EnvAudience:       "app",
		demo.EnvApplicationArn: "arn:aws:sso::111122223333:application/ssoins-1/apl-1",
		demo.EnvAccessRoleArn:  "arn:aws:iam::111122223333:role/UserAccess",
		demo.EnvRegion:         "us-east-1",
		EnvTable:               "tipkit-sessions",
		EnvEncryptionKey:       base64.StdEncoding.EncodeToString(make([]byte, 32)),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	mw, err := fromEnv(ctx, mapEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // for a background fetch to show
	_ = mw.Close()
	if n := hits.Load(); n != 0 {
		t.Errorf("building the middleware made %d requests, want none", n)
	}
}
