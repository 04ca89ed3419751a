package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tipkit/tipkit/tiptest"
)

// The error codes of the fault kinds in each protocol the command serves.
var (
	queryCodes = map[string]string{ // STS and IAM (awsQuery)
		"throttle": "Throttling", "internal": "InternalError",
		"unavailable": "ServiceUnavailable", "deny": "AccessDenied",
	}
	oidcCodes = map[string]string{ // SSO OIDC (restJson1)
		"throttle": "SlowDownException", "internal": "InternalServerException",
		"unavailable": "ServiceUnavailableException", "deny": "AccessDeniedException",
	}
	ssoAdminCodes = map[string]string{ // sso-admin (awsJson1_1)
		"throttle": "ThrottlingException", "internal": "InternalServerException",
		"unavailable": "ServiceUnavailableException", "deny": "AccessDeniedException",
	}
)

// faultKinds are the fault kinds, in the order of the documentation.
var faultKinds = []string{"throttle", "internal", "unavailable", "deny"}

// faultOps are the operations a fault may name, with the codes of their
// protocol.
var faultOps = map[string]map[string]string{
	"AssumeRole":                 queryCodes,
	"AssumeRoleWithWebIdentity":  queryCodes,
	"GetCallerIdentity":          queryCodes,
	"GetRole":                    queryCodes,
	"CreateTokenWithIAM":         oidcCodes,
	"DescribeApplication":        ssoAdminCodes,
	"GetApplicationGrant":        ssoAdminCodes,
	"DescribeTrustedTokenIssuer": ssoAdminCodes,
}

// faultOpNames returns the keys of faultOps, sorted.
func faultOpNames() []string {
	names := make([]string, 0, len(faultOps))
	for op := range faultOps {
		names = append(names, op)
	}
	slices.Sort(names)
	return names
}

// faultSpec is a fault as -fault and POST /_tiptest/faults give it.
type faultSpec struct {
	// Operation is the operation the fault applies to.
	Operation string `json:"operation"`
	// Fault is a kind (faultKinds) or an AWS error code; empty for
	// latency only.
	Fault string `json:"fault,omitempty"`
	// Latency is a Go duration; empty for none.
	Latency string `json:"latency,omitempty"`
	// Count limits the fault to the next Count calls; zero means until
	// cleared.
	Count int `json:"count,omitempty"`
}

// parseFaultFlag reads a -fault value, OP=WHAT[:N], where WHAT is a
// latency, an error, or LATENCY+ERROR.
func parseFaultFlag(v string) (faultSpec, error) {
	op, what, ok := strings.Cut(v, "=")
	if !ok {
		return faultSpec{}, fmt.Errorf("%q is not OP=WHAT[:N]", v)
	}
	s := faultSpec{Operation: op}
	if w, count, ok := strings.Cut(what, ":"); ok {
		n, err := strconv.Atoi(count)
		if err != nil || n <= 0 {
			return faultSpec{}, fmt.Errorf("%q: the count after ':' must be a positive integer", v)
		}
		s.Count, what = n, w
	}
	for part := range strings.SplitSeq(what, "+") {
		switch {
		case part == "":
			return faultSpec{}, fmt.Errorf("%q is not OP=WHAT[:N]", v)
		case part[0] >= '0' && part[0] <= '9':
			if s.Latency != "" {
				return faultSpec{}, fmt.Errorf("%q holds two latencies", v)
			}
			s.Latency = part
		case s.Fault != "":
			return faultSpec{}, fmt.Errorf("%q holds two errors", v)
		default:
			s.Fault = part
		}
	}
	if _, err := s.resolve(); err != nil {
		return faultSpec{}, err
	}
	return s, nil
}

// String is the -fault form of s.
func (s faultSpec) String() string {
	what := strings.Join(slices.DeleteFunc([]string{s.Latency, s.Fault}, func(p string) bool { return p == "" }), "+")
	if s.Count > 0 {
		what += ":" + strconv.Itoa(s.Count)
	}
	return s.Operation + "=" + what
}

// resolve checks s and returns its tiptest.Fault.
func (s faultSpec) resolve() (tiptest.Fault, error) {
	codes, ok := faultOps[s.Operation]
	if !ok {
		return tiptest.Fault{}, fmt.Errorf("unknown operation %q (want one of %s)", s.Operation, strings.Join(faultOpNames(), ", "))
	}
	if s.Fault == "" && s.Latency == "" {
		return tiptest.Fault{}, fmt.Errorf("a fault of %s needs an error, a latency or both", s.Operation)
	}
	if s.Count < 0 {
		return tiptest.Fault{}, fmt.Errorf("count %d is negative", s.Count)
	}
	f := tiptest.Fault{Times: s.Count}
	if s.Latency != "" {
		d, err := time.ParseDuration(s.Latency)
		if err != nil || d <= 0 {
			return tiptest.Fault{}, fmt.Errorf("latency %q is not a positive duration such as 200ms", s.Latency)
		}
		f.Latency = d
	}
	if s.Fault != "" {
		code, ok := codes[s.Fault]
		if !ok && !isErrorCode(s.Fault) {
			return tiptest.Fault{}, fmt.Errorf("fault %q is neither %s nor an AWS error code such as InvalidGrantException",
				s.Fault, strings.Join(faultKinds, ", "))
		}
		if !ok {
			code = s.Fault
		}
		f.Code = code
	}
	return f, nil
}

// isErrorCode reports whether s looks like an AWS error code: an upper
// case letter, then letters and digits.
func isErrorCode(s string) bool {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}

// maxControlBody bounds the body of POST /_tiptest/faults.
const maxControlBody = 64 << 10

// controlHandler serves the fault endpoint of a under tiptest.ControlPath:
// POST and DELETE faults, GET calls. POST takes only application/json, which
// a web page cannot send to it without a CORS preflight, never answered.
func controlHandler(a *tiptest.AWS) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+tiptest.ControlPath+"faults", func(w http.ResponseWriter, r *http.Request) {
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			http.Error(w, "tiptest: the body must be application/json", http.StatusUnsupportedMediaType)
			return
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxControlBody))
		dec.DisallowUnknownFields()
		var s faultSpec
		if err := dec.Decode(&s); err != nil {
			http.Error(w, "tiptest: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := dec.Decode(new(json.RawMessage)); !errors.Is(err, io.EOF) {
			http.Error(w, "tiptest: the body must be one JSON object", http.StatusBadRequest)
			return
		}
		f, err := s.resolve()
		if err != nil {
			http.Error(w, "tiptest: "+err.Error(), http.StatusBadRequest)
			return
		}
		a.SetFault(s.Operation, f)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE "+tiptest.ControlPath+"faults", func(w http.ResponseWriter, _ *http.Request) {
		a.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET "+tiptest.ControlPath+"calls", func(w http.ResponseWriter, _ *http.Request) {
		b, err := json.Marshal(a.CallCounts())
		if err != nil {
			http.Error(w, "tiptest: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(append(b, '\n'))
	})
	return mux
}
