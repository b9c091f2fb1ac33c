package telemetry

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// dashboardQueries reads the Grafana dashboard the Helm chart ships: the
// PromQL of every panel query, and the label_values() query of every
// variable, each mapped to where it is.
func dashboardQueries(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile("../../deploy/helm/hookbridge/dashboards/hookbridge.json")
	if err != nil {
		t.Fatal(err)
	}
	var db struct {
		Templating struct {
			List []struct {
				Name, Type, Query string
			}
		}
		Panels []struct {
			Title   string
			Targets []struct{ RefID, Expr string }
		}
	}
	if err := json.Unmarshal(raw, &db); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, v := range db.Templating.List {
		if v.Type == "query" {
			out["variable "+v.Name] = v.Query
		}
	}
	for _, p := range db.Panels {
		for _, tg := range p.Targets {
			out["panel "+p.Title+" "+tg.RefID] = tg.Expr
		}
	}
	if len(out) < 10 {
		t.Fatalf("the dashboard holds %d queries", len(out))
	}
	return out
}

// Every series the chart's Grafana dashboard queries is one this bridge
// exports (its own, and the Go and process collectors'), with the labels the
// query groups, filters and reads variables by; rate() and increase() take
// counters only. Prometheus adds namespace, job and instance at the scrape.
func TestGrafanaDashboardMatchesExported(t *testing.T) {
	// Prometheus adds namespace, job and instance at the scrape.
	exported := exportedFamilies(t, "namespace", "job", "instance")

	metricRE := regexp.MustCompile(`\b(?:hookbridge|go|process)_[a-z_]+`)
	groupRE := regexp.MustCompile(`\b(?:by|without|on|ignoring)\s*\(([^)]*)\)`)
	selectorRE := regexp.MustCompile(`((?:hookbridge|go|process)_[a-z_]+)\{([^}]*)\}`)
	matcherRE := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	rateRE := regexp.MustCompile(`\b(?:rate|irate|increase)\(\s*((?:hookbridge|go|process)_[a-z_]+)`)
	varRE := regexp.MustCompile(`^label_values\((hookbridge_[a-z_]+)(?:\{[^}]*\})?,\s*([a-z_]+)\)$`)
	for where, q := range dashboardQueries(t) {
		if strings.HasPrefix(where, "variable ") {
			m := varRE.FindStringSubmatch(q)
			if m == nil {
				t.Errorf("%s: %q is not label_values(hookbridge_...{...}, label)", where, q)
				continue
			}
			if fam, ok := exported[m[1]]; !ok || !fam.labels[m[2]] {
				t.Errorf("%s: %s is not exported with a label %s", where, m[1], m[2])
			}
			continue
		}
		metrics := metricRE.FindAllString(q, -1)
		if len(metrics) == 0 {
			t.Errorf("%s: %q names no metric of the bridge", where, q)
		}
		for _, metric := range metrics {
			if _, ok := exported[metric]; !ok {
				t.Errorf("%s: %s is not a metric the bridge exports", where, metric)
			}
		}
		// Grouping labels: each is a label of some metric the query names.
		for _, g := range groupRE.FindAllStringSubmatch(q, -1) {
			for l := range strings.SplitSeq(g[1], ",") {
				l = strings.TrimSpace(l)
				found := false
				for _, metric := range metrics {
					found = found || exported[metric].labels[l]
				}
				if l != "" && !found {
					t.Errorf("%s: %q groups by %s, which none of %v carries", where, q, l, metrics)
				}
			}
		}
		for _, s := range selectorRE.FindAllStringSubmatch(q, -1) {
			for _, m := range matcherRE.FindAllStringSubmatch(s[2], -1) {
				if fam, ok := exported[s[1]]; ok && !fam.labels[m[1]] {
					t.Errorf("%s: %s has no label %s", where, s[1], m[1])
				}
			}
		}
		for _, m := range rateRE.FindAllStringSubmatch(q, -1) {
			if fam, ok := exported[m[1]]; ok && fam.kind != "COUNTER" {
				t.Errorf("%s: rate or increase of %s, a %s", where, m[1], strings.ToLower(fam.kind))
			}
		}
	}
}
