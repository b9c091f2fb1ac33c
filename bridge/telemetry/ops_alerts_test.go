package telemetry

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
)

// opsAlerts reads the alert table of docs/operations.md ("Alerts worth
// setting"): each alert's name mapped to its PromQL expression, the first
// code span of its expression cell. A row whose expression names no
// hookbridge_ metric (`/readyz` failing) is left out.
func opsAlerts(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	start := strings.Index(text, "\n## Alerts worth setting")
	if start < 0 {
		t.Fatal("docs/operations.md has no Alerts worth setting section")
	}
	section := text[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	code := regexp.MustCompile("`([^`]+)`")
	alerts := map[string]string{}
	for line := range strings.SplitSeq(section, "\n") {
		cells := strings.Split(strings.TrimSpace(line), "|")
		if len(cells) < 4 {
			continue
		}
		m := code.FindStringSubmatch(cells[2])
		if m == nil || !strings.Contains(m[1], "hookbridge_") {
			continue
		}
		alerts[strings.TrimSpace(cells[1])] = m[1]
	}
	if len(alerts) == 0 {
		t.Fatal("docs/operations.md's alert table has no PromQL expression")
	}
	return alerts
}

// Every alert docs/operations.md suggests names metrics the bridge exports,
// groups and filters them by labels they carry, and takes rate() or
// increase() of counters only. The breaker alert looks at the gauge's
// highest value over a window that spans one opening and one probe: during
// an outage the breaker turns half-open at the end of each opening and back
// to open when its probe fails, and a probe lasts as long as the request (or
// a plugin's start), so an expression on the gauge alone that holds only
// while it reads 2 (open) keeps resetting its `for` and does not fire, and
// one that holds while it reads 1 too keeps firing after the outage on a
// route that gets no record to probe with.
func TestOperationsAlertsMatchExported(t *testing.T) {
	exported := exportedFamilies(t)

	metricRE := regexp.MustCompile(`\bhookbridge_[a-z_]+`)
	groupRE := regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	matcherRE := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	selectorRE := regexp.MustCompile(`\{([^}]*)\}`)
	rateRE := regexp.MustCompile(`\b(?:rate|irate|increase)\(\s*(hookbridge_[a-z_]+)`)
	breakerRE := regexp.MustCompile(`max_over_time\(hookbridge_breaker_state\[([0-9]+[smh])\]\)\)?\s*==\s*2\s*$`)
	for name, expr := range opsAlerts(t) {
		metrics := metricRE.FindAllString(expr, -1)
		var labels []string
		for _, g := range groupRE.FindAllStringSubmatch(expr, -1) {
			for l := range strings.SplitSeq(g[1], ",") {
				labels = append(labels, strings.TrimSpace(l))
			}
		}
		for _, s := range selectorRE.FindAllStringSubmatch(expr, -1) {
			for _, m := range matcherRE.FindAllStringSubmatch(s[1], -1) {
				labels = append(labels, m[1])
			}
		}
		for _, metric := range metrics {
			fam, ok := exported[metric]
			if !ok {
				t.Errorf("alert %q: %s is not a metric the bridge exports", name, metric)
				continue
			}
			for _, l := range labels {
				if l != "" && !fam.labels[l] {
					t.Errorf("alert %q: %s has no label %s", name, metric, l)
				}
			}
		}
		for _, m := range rateRE.FindAllStringSubmatch(expr, -1) {
			if fam, ok := exported[m[1]]; ok && fam.kind != "COUNTER" {
				t.Errorf("alert %q: rate or increase of %s, a %s", name, m[1], strings.ToLower(fam.kind))
			}
		}
		if !strings.Contains(expr, "hookbridge_breaker_state") {
			continue
		}
		m := breakerRE.FindStringSubmatch(expr)
		if m == nil {
			t.Errorf("alert %q: %q is not max_over_time(hookbridge_breaker_state[W]) == 2", name, expr)
			continue
		}
		window, err := time.ParseDuration(m[1])
		if err != nil {
			t.Fatalf("alert %q: window %q: %v", name, m[1], err)
		}
		// One opening at its longest (open_timeout plus a fifth) and one
		// probe at its longest: a webhook request, or a plugin process's
		// start (handshake, health check and ready message, 30 s each).
		probe := max(config.DefaultWebhookTimeout.D(), 3*30*time.Second)
		if cycle := config.DefaultOpenTimeout.D()*6/5 + probe; window < cycle {
			t.Errorf("alert %q: window %v is shorter than one opening and one probe (%v)", name, window, cycle)
		}
	}
}

// exportedFamily is what a query may read of an exported series: its type
// and its labels.
type exportedFamily struct {
	kind   string
	labels map[string]bool
}

// exportedFamilies returns every series the bridge exports, by the name a
// query uses (a histogram's _bucket, _sum and _count as counters), with its
// labels and scrape, labels Prometheus adds at the scrape.
func exportedFamilies(t *testing.T, scrape ...string) map[string]exportedFamily {
	t.Helper()
	families, err := recordEveryMetric(t).Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]exportedFamily{}
	for _, f := range families {
		fam := exportedFamily{kind: f.GetType().String(), labels: map[string]bool{}}
		for _, l := range scrape {
			fam.labels[l] = true
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				fam.labels[l.GetName()] = true
			}
		}
		exported[f.GetName()] = fam
		if fam.kind == "HISTOGRAM" {
			bucket := exportedFamily{kind: "COUNTER", labels: map[string]bool{"le": true}}
			for l := range fam.labels {
				bucket.labels[l] = true
			}
			exported[f.GetName()+"_bucket"] = bucket
			exported[f.GetName()+"_sum"] = exportedFamily{kind: "COUNTER", labels: fam.labels}
			exported[f.GetName()+"_count"] = exportedFamily{kind: "COUNTER", labels: fam.labels}
		}
	}
	return exported
}
