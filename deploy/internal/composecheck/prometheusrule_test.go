package main

// The PrometheusRule checks: a rule built from the alerts table of
// docs/operations.md passes; one change each is a problem.

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

const (
	opsDoc    = "../../../docs/operations.md"
	readmeDoc = "../../../README.md"
)

func realAlertDocs(t *testing.T, exact bool) *alertDocs {
	t.Helper()
	r := &report{}
	d := loadAlertDocs(r, opsDoc, readmeDoc, exact)
	if d == nil || len(r.problems) > 0 {
		t.Fatalf("the docs' alerts do not load:\n  %s", strings.Join(r.problems, "\n  "))
	}
	return d
}

// documentedRules are the rules the chart renders with default values: the
// documented alerts as documented.
func documentedRules(d *alertDocs) []rule {
	var out []rule
	for _, a := range d.alerts {
		ru := rule{
			Alert:  a.name,
			Expr:   a.expr,
			Labels: map[string]string{"severity": "warning"},
			Annotations: map[string]string{
				"summary":     "s",
				"description": "d",
				"runbook_url": "https://example.test/docs/operations.md#" + strings.ToLower(a.name),
			},
		}
		if a.dur > 0 {
			ru.For = forText(a.dur)
		}
		out = append(out, ru)
	}
	return out
}

// ruleCheck runs the manifests check on the baseline manifest plus a
// PrometheusRule of these rules.
func ruleCheck(t *testing.T, d *alertDocs, rules []rule) *report {
	t.Helper()
	doc := map[string]any{
		"apiVersion": "monitoring.coreos.com/v1",
		"kind":       "PrometheusRule",
		"metadata":   map[string]any{"name": "hb"},
		"spec":       map[string]any{"groups": []any{map[string]any{"name": "hb", "rules": rules}}},
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return rawRuleCheck(t, d, string(b))
}

func rawRuleCheck(t *testing.T, d *alertDocs, ruleDoc string) *report {
	t.Helper()
	manifest := fillPlaceholders(baseManifest+"\n---\n"+ruleDoc, nil, nil)
	dir := write(t, map[string]string{"rendered.yaml": manifest})
	r := &report{}
	checkManifests(r, filepath.Join(dir, "rendered.yaml"), []string{"ConfigMap", "Deployment", "PrometheusRule"}, "", "", false, d, nil)
	return r
}

func TestAlertsTableReads(t *testing.T) {
	d := realAlertDocs(t, true)
	want := map[string]bool{
		"HookbridgeLagGrowing": true, "HookbridgeOldRecordsWaiting": true, "HookbridgeBreakerOpen": true,
		"HookbridgeStuckPartition": true, "HookbridgeDeadLetters": true, "HookbridgeNotReady": true,
	}
	for _, a := range d.alerts {
		if !want[a.name] {
			t.Errorf("unexpected alert %s (%s)", a.name, a.expr)
		}
		delete(want, a.name)
		if a.name == "HookbridgeLagGrowing" && a.dur != 10*time.Minute {
			t.Errorf("%s: for %v, want the documented 10m", a.name, a.dur)
		}
		if a.name == "HookbridgeStuckPartition" && a.dur != 0 {
			t.Errorf("%s: for %v, the docs give none", a.name, a.dur)
		}
		if a.name == "HookbridgeBreakerOpen" && a.expr != "max by (target) (max_over_time(hookbridge_breaker_state[2m])) == 2" {
			t.Errorf("%s: expr %q", a.name, a.expr)
		}
	}
	for name := range want {
		t.Errorf("alert %s not read from the table", name)
	}
	if !d.exported("hookbridge_plugin_cold_starts_total") || !d.exported("hookbridge_delivery_duration_seconds_bucket") {
		t.Error("a suffix row or a histogram's series is not read as exported")
	}
	if d.exported("hookbridge_consumer_lag_bucket") || d.exported("hookbridge_consumer_lags") {
		t.Error("a series the bridge does not export is read as exported")
	}
}

func TestPrometheusRuleAsDocumented(t *testing.T) {
	d := realAlertDocs(t, true)
	baseNoProblems(t, ruleCheck(t, d, documentedRules(d)))
}

// edit returns the documented rules with one of them changed.
func edit(d *alertDocs, name string, f func(*rule)) []rule {
	rules := documentedRules(d)
	for i := range rules {
		if rules[i].Alert == name {
			f(&rules[i])
		}
	}
	return rules
}

func TestPrometheusRuleProblems(t *testing.T) {
	exact, loose := realAlertDocs(t, true), realAlertDocs(t, false)
	for _, tt := range []struct {
		name  string
		d     *alertDocs
		rules []rule
		want  string
	}{
		{"other grouping", loose, edit(loose, "HookbridgeLagGrowing", func(r *rule) {
			r.Expr = "sum by (topic) (hookbridge_consumer_lag) > 10000"
		}), "is not the expression"},
		{"other comparison", loose, edit(loose, "HookbridgeNotReady", func(r *rule) {
			r.Expr = "min by (route) (hookbridge_route_ready) < 1"
		}), "is not the expression"},
		{"threshold changed, as documented wanted", exact, edit(exact, "HookbridgeLagGrowing", func(r *rule) {
			r.Expr = "sum by (route) (hookbridge_consumer_lag) > 5"
		}), "operations.md documents \"sum by"},
		{"window changed, as documented wanted", exact, edit(exact, "HookbridgeBreakerOpen", func(r *rule) {
			r.Expr = "max by (target) (max_over_time(hookbridge_breaker_state[1m])) == 2"
		}), "documents \"max by (target) (max_over_time(hookbridge_breaker_state[2m]))"},
		{"for changed, as documented wanted", exact, edit(exact, "HookbridgeNotReady", func(r *rule) { r.For = "1m" }), "for \"1m\""},
		{"for added, as documented wanted", exact, edit(exact, "HookbridgeStuckPartition", func(r *rule) { r.For = "1m" }), "documents none"},
		{"alert missing", exact, documentedRules(exact)[1:], "is missing"},
		{"not PromQL", loose, edit(loose, "HookbridgeDeadLetters", func(r *rule) {
			r.Expr = "sum by (route) (rate(hookbridge_records_dead_lettered_total[5m]) > 0"
		}), "is not PromQL"},
		{"metric the bridge does not export", loose, append(documentedRules(loose), rule{
			Alert: "HookbridgeSlow", Expr: "histogram_quantile(0.99, sum by (le) (rate(hookbridge_delivery_seconds_bucket[5m]))) > 1",
		}), "hookbridge_delivery_seconds_bucket"},
		{"bad for", loose, edit(loose, "HookbridgeLagGrowing", func(r *rule) { r.For = "10 minutes" }), "for \"10 minutes\""},
		{"no severity", loose, edit(loose, "HookbridgeBreakerOpen", func(r *rule) { r.Labels = nil }), "severity"},
		{"unknown severity", loose, edit(loose, "HookbridgeBreakerOpen", func(r *rule) { r.Labels["severity"] = "page" }), "severity \"page\""},
		{"no description", loose, edit(loose, "HookbridgeDeadLetters", func(r *rule) { delete(r.Annotations, "description") }), "no description"},
		{"runbook of another alert", loose, edit(loose, "HookbridgeDeadLetters", func(r *rule) {
			r.Annotations["runbook_url"] = "https://example.test/docs/operations.md#hookbridgenotready"
		}), "does not end in #hookbridgedeadletters"},
		{"alert twice", loose, append(documentedRules(loose), documentedRules(loose)[0]), "twice"},
		{"neither alert nor record", loose, append(documentedRules(loose), rule{Expr: "vector(1)"}), "exactly one of alert, record"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantProblem(t, ruleCheck(t, tt.d, tt.rules), tt.want)
		})
	}
}

// Thresholds, ranges and for may change (the chart's values); extra rules
// may name other metrics, and a documented histogram's series.
func TestPrometheusRuleOverridesPass(t *testing.T) {
	d := realAlertDocs(t, false)
	rules := edit(d, "HookbridgeBreakerOpen", func(r *rule) {
		r.Expr = "max by (target) (max_over_time(hookbridge_breaker_state[5m])) == 2"
		r.For = "15m"
	})
	rules = append(rules[1:], // lag growing disabled
		rule{Record: "route:hookbridge_delivery_duration_seconds:p99", Expr: "histogram_quantile(0.99, sum by (route, le) (rate(hookbridge_delivery_duration_seconds_bucket[5m])))"},
		rule{Alert: "HookbridgeDown", Expr: `absent(up{job="hookbridge"})`, For: "5m"})
	baseNoProblems(t, ruleCheck(t, d, rules))
}

func TestPrometheusRuleStrict(t *testing.T) {
	d := realAlertDocs(t, false)
	r := rawRuleCheck(t, d, `apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: hb}
spec:
  groups:
    - name: hb
      rules:
        - {alert: HookbridgeStuckPartition, exp: "sum by (route) (hookbridge_partitions_stuck) > 0"}
`)
	wantProblem(t, r, "does not decode strictly into PrometheusRule")
	wantProblem(t, rawRuleCheck(t, nil, "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {name: hb}\nspec: {groups: []}\n"), "no -alerts-doc")
}

// The docs themselves: an alert on a metric the README does not document,
// or an expression that is not PromQL, is a problem of the docs.
func TestAlertDocsProblems(t *testing.T) {
	readme := "# x\n\n## Observability\n\n  | metric | what |\n  |---|---|\n  | `hookbridge_consumer_lag` | lag |\n\n## Next\n"
	for _, tt := range []struct{ row, want string }{
		{"| lag | `sum by (route) (hookbridge_consumer_lags) > 1` for 10m | why |", "hookbridge_consumer_lags"},
		{"| lag | `sum by (route) (hookbridge_consumer_lag) >` | why |", "is not PromQL"},
		{"| lag | `sum by (route) (hookbridge_consumer_lag) > 1` for ten | why |", "for ten"},
		{"| lag | sum by (route) (hookbridge_consumer_lag) > 1 | why |", "does not start with"},
	} {
		dir := write(t, map[string]string{
			"README.md":     readme,
			"operations.md": "# Ops\n\n## Alerts worth setting\n\n| alert | expression (PromQL) | why |\n|---|---|---|\n" + tt.row + "\n\n## Next\n",
		})
		r := &report{}
		loadAlertDocs(r, filepath.Join(dir, "operations.md"), filepath.Join(dir, "README.md"), true)
		wantProblem(t, r, tt.want)
	}
}
