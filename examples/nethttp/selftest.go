package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tipkit/tipkit/examples/internal/demo"
)

// metricsCheck is the example's own part of the self-test. It reads
// /metrics, with no token, before and after the users' requests, and
// checks that tipkit_exchanges_total moved (one exchange per user), that
// tipkit_requests_total counts every request with a token as ok and the
// one without as missing_token, and that nothing of a user (token, claim,
// access key) shows.
type metricsCheck struct {
	base   string
	before map[string]*dto.MetricFamily
}

// labels selects the series of a metric that carry all of these labels.
type labels map[string]string

// The series the self-test follows.
var followed = []struct {
	name   string
	labels labels
}{
	{"tipkit_exchanges_total", nil},
	{"tipkit_exchanges_total", labels{"tipkit_operation": "exchange", "tipkit_result": "ok"}},
	{"tipkit_requests_total", labels{"tipkit_outcome": "ok"}},
	{"tipkit_requests_total", labels{"tipkit_outcome": "missing_token"}},
	{"tipkit_users", nil},
}

// Before reads /metrics once the server runs.
func (c *metricsCheck) Before(ctx context.Context, base string) error {
	c.base = base
	_, families, err := scrape(ctx, base)
	if err != nil {
		return fmt.Errorf("/metrics before the requests: %w", err)
	}
	c.before = families
	return nil
}

// After reads /metrics again, prints the followed series before and after
// the requests, and checks them.
func (c *metricsCheck) After(ctx context.Context, w io.Writer, sent demo.Sent) (checks int, failed []string) {
	check := func(ok bool, format string, args ...any) {
		checks++
		if !ok {
			failed = append(failed, fmt.Sprintf(format, args...))
		}
	}
	body, after, err := scrape(ctx, c.base)
	check(err == nil, "/metrics after the requests: %v", err)
	if err != nil {
		return checks, failed
	}

	fmt.Fprintf(w, "GET /metrics with no token, before and after the users' requests:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	moved := make([]float64, len(followed))
	for i, f := range followed {
		was, is := sum(c.before, f.name, f.labels), sum(after, f.name, f.labels)
		moved[i] = is - was
		fmt.Fprintf(tw, "  %s%s\t%g -> %g\n", f.name, f.labels, was, is)
	}
	tw.Flush()

	_, exchangeFound := after["tipkit_exchanges_total"]
	check(exchangeFound, "/metrics has no tipkit_exchanges_total")
	check(moved[0] > 0, "tipkit_exchanges_total did not move")
	check(moved[1] == float64(len(sent.Users)), "tipkit_exchanges_total%s moved by %g, want %d: one exchange per user",
		followed[1].labels, moved[1], len(sent.Users))
	check(moved[2] == float64(sent.WithToken), "tipkit_requests_total%s moved by %g, want %d: the requests with a token",
		followed[2].labels, moved[2], sent.WithToken)
	check(moved[3] == float64(sent.WithoutToken), "tipkit_requests_total%s moved by %g, want %d: the requests without a token",
		followed[3].labels, moved[3], sent.WithoutToken)
	leaks := leaked(body, sent.Users)
	check(len(leaks) == 0, "/metrics shows %s", strings.Join(leaks, ", "))
	if len(leaks) == 0 {
		fmt.Fprintf(w, "  no token, claim of a token (subject, email, name, jti) or AWS key in its %d bytes\n", len(body))
	}
	return checks, failed
}

// String formats l as Prometheus writes labels, sorted by name.
func (l labels) String() string {
	if len(l) == 0 {
		return ""
	}
	var pairs []string
	for k, v := range l {
		pairs = append(pairs, fmt.Sprintf("%s=%q", k, v))
	}
	slices.Sort(pairs)
	return "{" + strings.Join(pairs, ",") + "}"
}

// scrape gets base/metrics, with no token, and parses it.
func scrape(ctx context.Context, base string) (string, map[string]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return "", nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return "", nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return "", nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		return "", nil, fmt.Errorf("not the Prometheus text format: %w", err)
	}
	return string(b), families, nil
}

// sum adds up the values of the series of name that carry want; 0 when
// there are none.
func sum(families map[string]*dto.MetricFamily, name string, want labels) float64 {
	var total float64
	for _, m := range families[name].GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && have[k] == v
		}
		if match {
			total += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
		}
	}
	return total
}

// awsKey matches AWS access key ids, long-term and temporary, and the
// start of the session tokens tiptest issues.
var awsKey = regexp.MustCompile(`\b(AKIA|ASIA)[A-Z2-7]{16}\b|IQoJb3JpZ2luX2Vj`)

// leaked names what of users shows in text (never the value itself): a
// token, the payload or signature of one, a string claim of its payload
// but the issuer and audience (subject, email, name, jti), a user's name,
// or an AWS key.
func leaked(text string, users []demo.User) []string {
	var found []string
	for _, u := range users {
		for what, secret := range secretsOf(u) {
			if secret != "" && strings.Contains(text, secret) {
				found = append(found, u.Name+"'s "+what)
			}
		}
	}
	if awsKey.MatchString(text) {
		found = append(found, "an AWS access key id or session token")
	}
	slices.Sort(found)
	return found
}

// secretsOf returns what of u must not show, by what it is.
func secretsOf(u demo.User) map[string]string {
	out := map[string]string{"name": u.Name, "token": u.Token}
	parts := strings.Split(u.Token, ".")
	if len(parts) != 3 {
		return out
	}
	out["token payload"], out["token signature"] = parts[1], parts[2]
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return out
	}
	var claims map[string]any
	if json.Unmarshal(payload, &claims) != nil {
		return out
	}
	for k, v := range claims {
		if s, ok := v.(string); ok && k != "iss" && k != "aud" {
			out[k+" claim"] = s
		}
	}
	return out
}
