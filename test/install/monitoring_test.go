package install_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	monv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"

	"github.com/jwe-webhook/jwe-webhook/test/e2e/harness"
)

// dashboardFile is the Grafana dashboard users import.
const dashboardFile = chartDir + "/dashboards/jwe-webhook.json"

// prometheusSeries are series Prometheus makes itself for every target; the
// webhook does not export them.
var prometheusSeries = []string{"up"}

// promql parses as Prometheus does by default.
var promql = parser.NewParser(parser.Options{})

// ruleSources are the PrometheusRule objects users install: the kustomize
// component and the chart's, with default and changed values.
func ruleSources(t *testing.T) map[string]object {
	t.Helper()
	srcs := map[string]object{}
	for _, o := range renderKustomize(t, kustomization(t, nil, []string{"components/monitoring"})) {
		if o["kind"] == "PrometheusRule" {
			srcs["components/monitoring"] = o
		}
	}
	for _, f := range []string{"monitoring-values.yaml", "managed-cluster-values.yaml"} {
		objs, _ := mustRenderChart(t, []string{filepath.Join(chartDir, "ci", f)})
		srcs["chart with "+f] = objs.get(t, "PrometheusRule", releaseName)
	}
	if len(srcs) != 3 {
		t.Fatalf("PrometheusRules found: %v", slices.Sorted(func(yield func(string) bool) {
			for k := range srcs {
				if !yield(k) {
					return
				}
			}
		}))
	}
	return srcs
}

// TestPrometheusRules decodes each PrometheusRule strictly into
// prometheus-operator's type, validates its groups as Prometheus loads a
// rule file (every expression parsed by the PromQL parser, every annotation
// template parsed), and checks each alert says how bad and what it is.
func TestPrometheusRules(t *testing.T) {
	for name, o := range ruleSources(t) {
		t.Run(name, func(t *testing.T) {
			var pr monv1.PrometheusRule
			decodeStrict(t, o, &pr)
			groups, err := yaml.Marshal(pr.Spec)
			if err != nil {
				t.Fatal(err)
			}
			rgs, errs := rulefmt.Parse(groups, false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
			for _, err := range errs {
				t.Errorf("rule file: %v", err)
			}
			if rgs == nil || len(rgs.Groups) == 0 {
				t.Fatal("no rule groups")
			}
			var alerts []string
			for _, g := range rgs.Groups {
				for _, r := range g.Rules {
					alerts = append(alerts, r.Alert)
					if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) {
						t.Errorf("alert %s: severity %q", r.Alert, r.Labels["severity"])
					}
					if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
						t.Errorf("alert %s lacks a summary or a description", r.Alert)
					}
				}
			}
			// What the alerts must cover.
			for _, want := range []string{"JWEWebhookDown", "JWEWebhookErrors", "JWEWebhookDenials", "JWEWebhookKeyServiceErrors",
				"JWEWebhookKeyServiceSlow", "JWEWebhookCacheHitRatioLow", "JWEWebhookKeyConfigReloadFailed", "JWEWebhookCertificateExpiresSoon"} {
				if !slices.Contains(alerts, want) {
					t.Errorf("no alert %s", want)
				}
			}
		})
	}
}

// TestServiceMonitor decodes each ServiceMonitor strictly and checks that it
// selects the Service and scrapes its metrics port.
func TestServiceMonitor(t *testing.T) {
	sources := map[string]objects{
		"components/monitoring": renderKustomize(t, kustomization(t, []string{"overlays/local-key"}, []string{"components/monitoring"})),
	}
	sources["chart"], _ = mustRenderChart(t, []string{filepath.Join(chartDir, "ci", "monitoring-values.yaml")})
	for name, objs := range sources {
		t.Run(name, func(t *testing.T) {
			var sm monv1.ServiceMonitor
			decodeStrict(t, objs.get(t, "ServiceMonitor", releaseName), &sm)
			svc := objs.get(t, "Service", releaseName)
			for k, v := range sm.Spec.Selector.MatchLabels {
				if lookup(svc, "metadata", "labels", k) != v {
					t.Errorf("the ServiceMonitor selects %s=%s, which the Service lacks", k, v)
				}
			}
			if !slices.Contains(sm.Spec.NamespaceSelector.MatchNames, namespace) {
				t.Errorf("the ServiceMonitor looks in %v, not %s", sm.Spec.NamespaceSelector.MatchNames, namespace)
			}
			if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "metrics" || sm.Spec.Endpoints[0].Path != "/metrics" {
				t.Errorf("endpoints %+v, want /metrics on port metrics", sm.Spec.Endpoints)
			}
		})
	}
}

// decodeStrict decodes o into v, refusing fields v's type does not have.
func decodeStrict(t *testing.T, o object, v any) {
	t.Helper()
	raw, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(raw, v); err != nil {
		t.Errorf("%s %v: %v", o["kind"], lookup(o, "metadata", "name"), err)
	}
}

// grafanaVariable is a dashboard variable in a query: $x, ${x}, $__x.
var grafanaVariable = regexp.MustCompile(`\$\{?(\w+)\}?`)

// dashboardQueries returns every PromQL query of the dashboard, panel
// targets and variable queries, with Grafana's variables replaced by values
// a query could hold, keyed by where they are.
func dashboardQueries(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	subst := func(q string) string {
		return grafanaVariable.ReplaceAllStringFunc(q, func(v string) string {
			if strings.Contains(v, "__rate_interval") || strings.Contains(v, "__interval") || strings.Contains(v, "__range") {
				return "5m"
			}
			return "value"
		})
	}
	qs := map[string]string{}
	for _, p := range d.Panels {
		for i, tg := range p.Targets {
			qs[fmt.Sprintf("panel %q target %d", p.Title, i)] = subst(tg.Expr)
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*\w+\)$`)
	for _, v := range d.Templating.List {
		q, _ := v.Query.(map[string]any)
		s, _ := q["query"].(string)
		if m := labelValues.FindStringSubmatch(s); m != nil {
			qs["variable "+v.Name] = subst(m[1])
		} else if s != "" {
			t.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, s)
		}
	}
	if len(qs) < 10 {
		t.Fatalf("the dashboard has %d queries", len(qs))
	}
	return qs
}

// TestDashboardQueriesParse parses every query of the dashboard.
func TestDashboardQueriesParse(t *testing.T) {
	for where, q := range dashboardQueries(t) {
		if _, err := promql.ParseExpr(q); err != nil {
			t.Errorf("%s: %q: %v", where, q, err)
		}
	}
}

// metricNames returns the metric names the expression selects.
func metricNames(t *testing.T, expr string) []string {
	t.Helper()
	e, err := promql.ParseExpr(expr)
	if err != nil {
		t.Errorf("%q: %v", expr, err)
		return nil
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		if name == "" {
			t.Errorf("%q selects series without naming a metric", expr)
		}
		names = append(names, name)
		return nil
	})
	return names
}

// TestMetricNamesExist checks every metric the rules and the dashboard use
// against the /metrics of the real webhook the control plane calls, after
// Secrets that it decrypted, refused and let through: a renamed metric
// would leave an alert that never fires and an empty panel.
func TestMetricNamesExist(t *testing.T) {
	c := needCluster(t)
	used := map[string][]string{}
	for src, o := range ruleSources(t) {
		var pr monv1.PrometheusRule
		decodeStrict(t, o, &pr)
		for _, g := range pr.Spec.Groups {
			for _, r := range g.Rules {
				for _, n := range metricNames(t, r.Expr.String()) {
					used[n] = append(used[n], src+" "+r.Alert)
				}
			}
		}
	}
	for where, q := range dashboardQueries(t) {
		for _, n := range metricNames(t, q) {
			used[n] = append(used[n], "dashboard "+where)
		}
	}

	driveReviews(t)
	exported := scrapeNames(t, c)
	for name, where := range used {
		if !exported[name] && !slices.Contains(prometheusSeries, name) {
			t.Errorf("%s is not on the webhook's /metrics; used by %s", name, strings.Join(slices.Compact(slices.Sorted(slices.Values(where))), ", "))
		}
	}
	for _, want := range []string{"jwe_webhook_admission_denials_total", "jwe_webhook_cache_hits_total", "jwe_webhook_serving_certificate_expiry_timestamp_seconds"} {
		if used[want] == nil {
			t.Errorf("neither the rules nor the dashboard use %s", want)
		}
	}
}

// driveReviews has the apiserver send the webhook a Secret it decrypts (twice:
// a cache miss, then a hit), one it refuses and one without JWE values.
func driveReviews(t *testing.T) {
	t.Helper()
	c := needCluster(t)
	ctx := t.Context()
	ns := "install-metrics"
	if _, err := c.Kubectl(ctx, nil, "create", "namespace", ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = c.Kubectl(t.Context(), nil, "delete", "namespace", ns, "--wait=false") })
	good, err := c.Encrypt(ctx, c.Key.PublicFile, []byte("metrics-value"), harness.Scope{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	wrongScope, err := c.Encrypt(ctx, c.Key.PublicFile, []byte("metrics-value"), harness.Scope{Namespace: "elsewhere"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		name, value string
		allowed     bool
	}{
		{"decrypted", good, true},
		{"decrypted-again", good, true},
		{"refused", wrongScope, false},
		{"plain", "plain", true},
	} {
		manifest := fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: %s, namespace: %s}\nstringData: {value: %q}\n", s.name, ns, s.value)
		_, err := c.Kubectl(ctx, []byte(manifest), "apply", "-f", "-")
		if (err == nil) != s.allowed {
			t.Fatalf("Secret %s: allowed %v, want %v (%v)", s.name, err == nil, s.allowed, err)
		}
	}
}

// scrapeNames returns the series names of the webhook's /metrics: each
// family's name, and for histograms and summaries their _bucket, _sum and
// _count series.
func scrapeNames(t *testing.T, c *harness.Cluster) map[string]bool {
	t.Helper()
	body, err := c.Metrics(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	names := map[string]bool{}
	for name, f := range fams {
		names[name] = true
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			names[name+"_sum"], names[name+"_count"] = true, true
		}
	}
	return names
}
