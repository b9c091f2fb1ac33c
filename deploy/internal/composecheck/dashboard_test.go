package main

// The Grafana dashboard checks: the dashboard the chart ships passes; one
// change each to it is a problem; the chart's dashboard ConfigMap must hold
// it as is, with the sidecar's label.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const shippedDashboard = "../../grafana/hookbridge.json"

func readShippedDashboard(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(shippedDashboard)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// dashboardCheck checks a dashboard's text against the real README.
func dashboardCheck(t *testing.T, text string) *report {
	t.Helper()
	dir := write(t, map[string]string{"hookbridge.json": text})
	r := &report{}
	checkDashboardFile(r, filepath.Join(dir, "hookbridge.json"), readmeDoc)
	return r
}

func TestDashboardShippedPasses(t *testing.T) {
	baseNoProblems(t, dashboardCheck(t, readShippedDashboard(t)))
}

func TestDashboardProblems(t *testing.T) {
	shipped := readShippedDashboard(t)
	// once replaces the first occurrence of old, which the dashboard must hold.
	once := func(old, new string) string {
		t.Helper()
		if !strings.Contains(shipped, old) {
			t.Fatalf("the shipped dashboard holds no %q", old)
		}
		return strings.Replace(shipped, old, new, 1)
	}
	consumed := `rate(hookbridge_records_consumed_total{namespace=~\"$namespace\", route=~\"$route\"}[$__rate_interval])`
	for _, tt := range []struct{ name, text, want string }{
		{"not JSON", shipped[:len(shipped)/2], "does not decode strictly"},
		{"misspelt field of a query", once(`"expr":`, `"exp":`), `unknown field "exp"`},
		{"old schema", once(`"schemaVersion": 41`, `"schemaVersion": 27`), "schemaVersion 27"},
		{"fixed id", once(`"id": null`, `"id": 12`), "id 12: want null"},
		{"panel id twice", once(`"id": 3,`, `"id": 2,`), "id 2 is the id of panel"},
		{"panel type", once(`"type": "timeseries"`, `"type": "graph"`), `type "graph"`},
		{"not PromQL", once(consumed, strings.TrimSuffix(consumed, ")")), "is not PromQL"},
		{"metric the bridge does not export", once("rate(hookbridge_records_consumed_total{", "rate(hookbridge_records_read_total{"),
			"hookbridge_records_read_total, which is not in"},
		{"runtime metric not allowed", once("go_goroutines and", "go_memstats_frees_total and"),
			"go_memstats_frees_total, which is neither"},
		{"variable the dashboard does not declare", once(`route=~\"$route\"`, `route=~\"$pod\"`), "names $pod"},
		{"variable outside a matcher", once(consumed, consumed+` > $route`), "uses $route outside a label matcher"},
		{"no namespace filter", once(`namespace=~\"$namespace\", route=~\"$route\"}[$__rate_interval]`, `route=~\"$route\"}[$__rate_interval]`),
			`is not filtered by namespace=~"$namespace"`},
		{"fixed data source", once(`"uid": "${datasource}"`, `"uid": "P1809F7CD0C75ACF3"`), "the dashboard's data source variable"},
		{"data source variable of another type", once(`"query": "prometheus"`, `"query": "loki"`), "want a data source variable of type prometheus"},
		{"variable missing", once(`"name": "target"`, `"name": "targets"`), "no variable target"},
		{"variable on another label", strings.ReplaceAll(shipped, `hookbridge_breaker_state{namespace=~\"$namespace\"}, target)`, `hookbridge_breaker_state{namespace=~\"$namespace\"}, state)`),
			"reads label state into variable target"},
		{"variable on a metric the bridge does not export", strings.ReplaceAll(shipped, "label_values(hookbridge_route_ready{", "label_values(hookbridge_routes_ready{"),
			"hookbridge_routes_ready, which is not in"},
		{"documented metric on no panel", strings.ReplaceAll(shipped, "hookbridge_plugin_restarts_total", "hookbridge_plugin_starts_total"),
			"documents hookbridge_plugin_restarts_total, which no panel shows"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantProblem(t, dashboardCheck(t, tt.text), tt.want)
		})
	}
}

// dashboardConfigMap is the ConfigMap the chart renders, holding text.
func dashboardConfigMap(label, text string) string {
	return "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hb-dashboard\n  labels: {" + label + "}\ndata:\n  hookbridge.json: |-\n    " +
		strings.ReplaceAll(strings.TrimSuffix(text, "\n"), "\n", "\n    ") + "\n"
}

// dashboardManifestCheck runs the manifests check on the baseline manifest
// plus a dashboard ConfigMap, against the shipped dashboard; dash nil leaves
// out -dashboard.
func dashboardManifestCheck(t *testing.T, cm string, dash *dashboardDocs) *report {
	t.Helper()
	manifest := fillPlaceholders(baseManifest+"\n"+cm, nil, nil)
	dir := write(t, map[string]string{"rendered.yaml": manifest})
	r := &report{}
	checkManifests(r, filepath.Join(dir, "rendered.yaml"), []string{"ConfigMap", "Deployment", dashboardKind}, "", "", false,
		realAlertDocs(t, false), dash)
	return r
}

func shippedDashboardDocs(t *testing.T, label string) *dashboardDocs {
	t.Helper()
	r := &report{}
	dd := loadDashboardDocs(r, shippedDashboard, label)
	if dd == nil {
		t.Fatalf("the shipped dashboard does not load:\n  %s", strings.Join(r.problems, "\n  "))
	}
	return dd
}

func TestDashboardConfigMap(t *testing.T) {
	shipped := readShippedDashboard(t)
	dd := shippedDashboardDocs(t, "grafana_dashboard=1")
	// The dashboard's ConfigMap counts as its own kind, not as a second
	// ConfigMap, and leaves the config's ConfigMap as the one checked.
	baseNoProblems(t, dashboardManifestCheck(t, dashboardConfigMap(`grafana_dashboard: "1"`, shipped), dd))
	custom := shippedDashboardDocs(t, "example.com/dashboard=hookbridge")
	baseNoProblems(t, dashboardManifestCheck(t, dashboardConfigMap(`example.com/dashboard: hookbridge`, shipped), custom))

	for _, tt := range []struct{ name, cm, want string }{
		{"another dashboard than the file", dashboardConfigMap(`grafana_dashboard: "1"`, strings.Replace(shipped, `"title": "Hookbridge"`, `"title": "Bridge"`, 1)),
			"differs from ../../grafana/hookbridge.json"},
		{"without the sidecar's label", dashboardConfigMap(`grafana_dashboard: "0"`, shipped), `label grafana_dashboard is "0", want "1"`},
		{"a broken dashboard", dashboardConfigMap(`grafana_dashboard: "1"`, strings.Replace(shipped, `"expr":`, `"exp":`, 1)),
			`hookbridge.json: does not decode strictly`},
		{"another key", strings.Replace(dashboardConfigMap(`grafana_dashboard: "1"`, shipped), "\ndata:\n", "\ndata:\n  README: see the chart\n", 1),
			"want only the data key hookbridge.json"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantProblem(t, dashboardManifestCheck(t, tt.cm, dd), tt.want)
		})
	}
	wantProblem(t, dashboardManifestCheck(t, dashboardConfigMap(`grafana_dashboard: "1"`, shipped), nil), "no -dashboard and -metrics-doc")
}
