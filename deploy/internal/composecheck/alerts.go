package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// prometheusRule is the part of monitoring.coreos.com/v1 PrometheusRule the
// chart writes, decoded strictly: a misspelt field of a rule fails.
type prometheusRule struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   map[string]any `json:"metadata"`
	Spec       struct {
		Groups []struct {
			Name     string `json:"name"`
			Interval string `json:"interval"`
			Rules    []rule `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

type rule struct {
	Alert         string            `json:"alert"`
	Record        string            `json:"record"`
	Expr          string            `json:"expr"`
	For           string            `json:"for"`
	KeepFiringFor string            `json:"keep_firing_for"`
	Labels        map[string]string `json:"labels"`
	Annotations   map[string]string `json:"annotations"`
}

// alertDocs is what the PrometheusRule is checked against: the alerts
// docs/operations.md documents ("Alerts worth setting"), the headings of
// that file (the runbooks the alerts link to), and the metrics the README's
// metric table documents (the ones the bridge exports).
type alertDocs struct {
	opsPath string
	alerts  []docAlert
	anchors map[string]bool
	metrics map[string]string // name -> its table row
	// exact: the rule holds every documented alert, expression and for as
	// documented (a render with default values).
	exact bool
}

// docAlert is one row of the alerts table.
type docAlert struct {
	name string // "Hookbridge" + the row's title in CamelCase
	expr string
	dur  time.Duration // the row's "for", 0 without one
}

// severities are the severity labels kube-prometheus-stack's own rules and
// Alertmanager's usual routes and inhibitions know.
var severities = map[string]bool{"critical": true, "warning": true, "info": true}

// loadAlertDocs reads the alerts table of opsPath and the metric table of
// readmePath, and checks the documented expressions themselves: each parses
// and names only metrics the README documents.
func loadAlertDocs(r *report, opsPath, readmePath string, exact bool) *alertDocs {
	d := &alertDocs{opsPath: opsPath, exact: exact}
	var err error
	if d.metrics, err = readMetricTable(readmePath); err != nil {
		r.fail(readmePath, "%v", err)
		return nil
	}
	raw, err := os.ReadFile(opsPath)
	if err != nil {
		r.fail(opsPath, "%v", err)
		return nil
	}
	d.anchors = headingAnchors(string(raw))
	if d.alerts, err = readAlertTable(string(raw)); err != nil {
		r.fail(opsPath, "%v", err)
		return nil
	}
	for _, a := range d.alerts {
		expr, err := parser.ParseExpr(a.expr)
		if err != nil {
			r.fail(opsPath, "alert %s: `%s` is not PromQL: %v", a.name, a.expr, err)
			continue
		}
		for _, n := range metricNames(expr) {
			if !d.exported(n) {
				r.fail(opsPath, "alert %s: `%s` names %s, which is not in %s's metric table (not a metric the bridge exports)", a.name, a.expr, n, readmePath)
			}
		}
	}
	return d
}

var alertsSection = regexp.MustCompile(`(?m)^## Alerts worth setting\n`)

// readAlertTable reads the rows of the table under "## Alerts worth
// setting": | title | `expr` [for D] ... | why |.
func readAlertTable(text string) ([]docAlert, error) {
	loc := alertsSection.FindStringIndex(text)
	if loc == nil {
		return nil, fmt.Errorf("no section \"## Alerts worth setting\"")
	}
	section := text[loc[1]:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	cell := regexp.MustCompile("^`([^`]+)`(?:\\s+for\\s+([0-9a-z]+))?")
	var out []docAlert
	for line := range strings.SplitSeq(section, "\n") {
		cells := strings.Split(line, "|")
		if !strings.HasPrefix(line, "|") || len(cells) < 4 {
			continue
		}
		title, second := strings.TrimSpace(cells[1]), strings.TrimSpace(cells[2])
		if title == "alert" || strings.Trim(title, "-") == "" {
			continue // the header and its rule
		}
		m := cell.FindStringSubmatch(second)
		if m == nil {
			return nil, fmt.Errorf("alerts table, row %q: the expression column does not start with `expr`", title)
		}
		a := docAlert{name: alertName(title), expr: m[1]}
		if m[2] != "" {
			d, err := model.ParseDuration(m[2])
			if err != nil {
				return nil, fmt.Errorf("alerts table, row %q: for %s: %v", title, m[2], err)
			}
			a.dur = time.Duration(d)
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the alerts table has no row")
	}
	return out, nil
}

// alertName is the rule's name for a row's title: "lag growing" is
// HookbridgeLagGrowing.
func alertName(title string) string {
	var b strings.Builder
	b.WriteString("Hookbridge")
	for _, w := range strings.FieldsFunc(title, func(r rune) bool { return r == ' ' || r == '-' }) {
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	return b.String()
}

// headingAnchors are the anchors GitHub gives the file's headings: lower
// case, punctuation dropped, spaces as hyphens.
func headingAnchors(text string) map[string]bool {
	out := map[string]bool{}
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	for line := range strings.SplitSeq(text, "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(line, "#"))
		out[strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(h), ""), " ", "-")] = true
	}
	return out
}

// readMetricTable reads the metric table of the README's Observability
// section: each documented name, mapped to its row. A name written as a
// suffix (`_stuck` after `hookbridge_partitions_paused`) stands for the
// previous name's "hookbridge_<part>" plus the suffix.
func readMetricTable(path string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	text := string(raw)
	start := strings.Index(text, "\n## Observability")
	if start < 0 {
		return nil, fmt.Errorf("no section \"## Observability\"")
	}
	section := text[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	table := strings.Index(section, "| metric |")
	if table < 0 {
		return nil, fmt.Errorf("the Observability section has no metric table")
	}
	rows := map[string]string{}
	name := regexp.MustCompile("`([a-z_]+)`")
	for line := range strings.SplitSeq(section[table:], "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first, _, _ := strings.Cut(line[1:], "|")
		base := ""
		for _, m := range name.FindAllStringSubmatch(first, -1) {
			n := m[1]
			switch {
			case strings.HasPrefix(n, "hookbridge_"):
				parts := strings.SplitN(n, "_", 3)
				base = parts[0] + "_" + parts[1]
			case strings.HasPrefix(n, "_") && base != "":
				n = base + n
			default:
				return nil, fmt.Errorf("metric table: cannot read %q in row %q", n, line)
			}
			rows[n] = line
		}
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("the metric table lists no metric")
	}
	return rows, nil
}

// exported says whether the bridge exports a series of that name: a
// documented metric, or a documented histogram's _bucket, _sum or _count.
func (d *alertDocs) exported(name string) bool {
	if _, ok := d.metrics[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if row, ok := d.metrics[strings.TrimSuffix(name, suffix)]; ok && strings.HasSuffix(name, suffix) && strings.Contains(row, "histogram") {
			return true
		}
	}
	return false
}

// metricNames are the metric names the expression's selectors name.
func metricNames(expr parser.Expr) []string {
	var out []string
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if name == "" && m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		if name != "" {
			out = append(out, name)
		}
		return nil
	})
	return out
}

// shape is the expression with every number and range set to zero: two
// expressions of one shape differ only in thresholds and windows, which the
// chart's values may change.
func shape(expr string) (string, error) {
	e, err := parser.ParseExpr(expr)
	if err != nil {
		return "", err
	}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.NumberLiteral:
			n.Val = 0
		case *parser.MatrixSelector:
			n.Range = 0
		case *parser.SubqueryExpr:
			n.Range, n.Step = 0, 0
		}
		return nil
	})
	return e.String(), nil
}

// checkPrometheusRule checks the render's PrometheusRule against the docs:
// every expression is PromQL and names only metrics the bridge exports; an
// alert the docs document keeps its documented expression (only thresholds
// and ranges may differ) and has a severity, a summary, a description and a
// runbook_url to its section of the docs; with d.exact every documented
// alert is there, as documented.
func checkPrometheusRule(r *report, path string, o *objects, d *alertDocs) {
	pr := o.prometheusRule
	if pr == nil {
		return
	}
	where := path + ": PrometheusRule"
	if d == nil {
		r.fail(where, "no -alerts-doc and -metrics-doc to check its alerts against")
		return
	}
	documented := map[string]docAlert{}
	for _, a := range d.alerts {
		documented[a.name] = a
	}
	seen := map[string]rule{}
	count := 0
	if len(pr.Spec.Groups) == 0 {
		r.fail(where, "no rule groups")
	}
	for gi, g := range pr.Spec.Groups {
		gw := fmt.Sprintf("%s: groups[%d]", where, gi)
		if g.Name == "" {
			r.fail(gw, "no name")
		}
		if len(g.Rules) == 0 {
			r.fail(gw, "no rules")
		}
		for ri, ru := range g.Rules {
			count++
			rw := fmt.Sprintf("%s.rules[%d] %s%s", gw, ri, ru.Alert, ru.Record)
			checkRule(r, rw, ru, d, documented)
			if ru.Alert == "" {
				continue
			}
			if _, dup := seen[ru.Alert]; dup {
				r.fail(rw, "alert %s is in the rule twice: disable the chart's own before adding one of that name", ru.Alert)
			}
			seen[ru.Alert] = ru
		}
	}
	if d.exact {
		for _, a := range d.alerts {
			ru, ok := seen[a.name]
			if !ok {
				r.fail(where, "alert %s, which %s documents, is missing", a.name, d.opsPath)
				continue
			}
			want, _ := parser.ParseExpr(a.expr)
			got, err := parser.ParseExpr(ru.Expr)
			if err == nil && want != nil && got.String() != want.String() {
				r.fail(where, "alert %s: expr %q, but %s documents %q", a.name, ru.Expr, d.opsPath, a.expr)
			}
			if dur, err := model.ParseDuration(orZero(ru.For)); err == nil && time.Duration(dur) != a.dur {
				r.fail(where, "alert %s: for %q, but %s documents %s", a.name, ru.For, d.opsPath, forText(a.dur))
			}
		}
	}
	as := "documented alerts in their documented shape"
	if d.exact {
		as = "every documented alert exactly as documented"
	}
	r.ok(fmt.Sprintf("PrometheusRule: %d rule(s), PromQL on exported metrics, %s in %s", count, as, d.opsPath))
}

func checkRule(r *report, where string, ru rule, d *alertDocs, documented map[string]docAlert) {
	if (ru.Alert == "") == (ru.Record == "") {
		r.fail(where, "want exactly one of alert, record")
	}
	expr, err := parser.ParseExpr(ru.Expr)
	if err != nil {
		r.fail(where, "expr %q is not PromQL: %v", ru.Expr, err)
		return
	}
	for _, n := range metricNames(expr) {
		if strings.HasPrefix(n, "hookbridge_") && !d.exported(n) {
			r.fail(where, "expr names %s, which the bridge does not export (it is not in the README's metric table)", n)
		}
	}
	for field, v := range map[string]string{"for": ru.For, "keep_firing_for": ru.KeepFiringFor} {
		if _, err := model.ParseDuration(orZero(v)); err != nil {
			r.fail(where, "%s %q: %v", field, v, err)
		}
	}
	doc, ok := documented[ru.Alert]
	if !ok {
		return
	}
	want, _ := shape(doc.expr)
	if got, _ := shape(ru.Expr); got != want {
		r.fail(where, "expr %q is not the expression %s documents, %q (only its thresholds and ranges may differ)", ru.Expr, d.opsPath, doc.expr)
	}
	if s := ru.Labels["severity"]; !severities[s] {
		r.fail(where, "label severity %q, want critical, warning or info", s)
	}
	for _, k := range []string{"summary", "description"} {
		if strings.TrimSpace(ru.Annotations[k]) == "" {
			r.fail(where, "no %s annotation: the on-call gets no word of what to look at", k)
		}
	}
	anchor := strings.ToLower(ru.Alert)
	if _, frag, _ := strings.Cut(ru.Annotations["runbook_url"], "#"); frag != anchor {
		r.fail(where, "runbook_url %q does not end in #%s, the alert's section of %s", ru.Annotations["runbook_url"], anchor, d.opsPath)
	} else if !d.anchors[anchor] {
		r.fail(where, "runbook_url links #%s, which %s has no heading for", anchor, d.opsPath)
	}
}

// orZero reads an unset duration as zero.
func orZero(s string) string {
	if s == "" {
		return "0s"
	}
	return s
}

func forText(d time.Duration) string {
	if d == 0 {
		return "none"
	}
	return model.Duration(d).String()
}
