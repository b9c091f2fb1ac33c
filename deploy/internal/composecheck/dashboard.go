package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// dashboard is the part of Grafana's dashboard JSON model the chart ships,
// decoded strictly: a misspelt field (a target's "exp") fails. Options and
// field configs are each panel type's own and are not checked.
type dashboard struct {
	ID            *int     `json:"id"`
	UID           string   `json:"uid"`
	Title         string   `json:"title"`
	Description   string   `json:"description"`
	Tags          []string `json:"tags"`
	Editable      bool     `json:"editable"`
	GraphTooltip  int      `json:"graphTooltip"`
	Links         []any    `json:"links"`
	Refresh       string   `json:"refresh"`
	SchemaVersion int      `json:"schemaVersion"`
	Version       int      `json:"version"`
	Time          struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"time"`
	Timepicker  map[string]any `json:"timepicker"`
	Timezone    string         `json:"timezone"`
	Annotations map[string]any `json:"annotations"`
	Templating  struct {
		List []dashboardVar `json:"list"`
	} `json:"templating"`
	Panels []dashboardPanel `json:"panels"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type dashboardVar struct {
	Name       string         `json:"name"`
	Label      string         `json:"label"`
	Type       string         `json:"type"`
	Datasource *datasourceRef `json:"datasource"`
	Definition string         `json:"definition"`
	Query      string         `json:"query"`
	Refresh    int            `json:"refresh"`
	Sort       int            `json:"sort"`
	Regex      string         `json:"regex"`
	IncludeAll bool           `json:"includeAll"`
	AllValue   string         `json:"allValue"`
	Multi      bool           `json:"multi"`
	Hide       int            `json:"hide"`
	Current    map[string]any `json:"current"`
	Options    []any          `json:"options"`
}

type dashboardPanel struct {
	ID          int            `json:"id"`
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Description string         `json:"description"`
	Collapsed   bool           `json:"collapsed"`
	Datasource  *datasourceRef `json:"datasource"`
	GridPos     *struct {
		H int `json:"h"`
		W int `json:"w"`
		X int `json:"x"`
		Y int `json:"y"`
	} `json:"gridPos"`
	FieldConfig map[string]any   `json:"fieldConfig"`
	Options     map[string]any   `json:"options"`
	Targets     []panelTarget    `json:"targets"`
	Panels      []dashboardPanel `json:"panels"` // a collapsed row's
}

type panelTarget struct {
	RefID        string         `json:"refId"`
	Datasource   *datasourceRef `json:"datasource"`
	Expr         string         `json:"expr"`
	LegendFormat string         `json:"legendFormat"`
	Range        bool           `json:"range"`
	Instant      bool           `json:"instant"`
	Hide         bool           `json:"hide"`
}

// minSchemaVersion is the schemaVersion Grafana 10.4 and 11.0 write; later
// versions migrate it on load.
const minSchemaVersion = 39

// panelTypes are the panel types of Grafana's core the dashboard may use.
var panelTypes = map[string]bool{
	"row": true, "timeseries": true, "stat": true, "state-timeline": true, "gauge": true, "bargauge": true, "table": true, "text": true,
}

// runtimeMetrics are the series of the Go and process collectors the bridge
// registers (client_golang's collectors.NewGoCollector and
// NewProcessCollector) that a dashboard may show: the README documents only
// the bridge's own.
var runtimeMetrics = map[string]bool{
	"process_cpu_seconds_total":     true,
	"process_resident_memory_bytes": true,
	"process_open_fds":              true,
	"process_max_fds":               true,
	"process_start_time_seconds":    true,
	"go_goroutines":                 true,
	"go_threads":                    true,
	"go_memstats_heap_inuse_bytes":  true,
	"go_memstats_heap_alloc_bytes":  true,
	"go_gc_gomemlimit_bytes":        true,
}

// dashboardVars are the variables the dashboard must declare: the data
// source, and a filter of every query on the bridge's series.
var dashboardVars = []string{"datasource", "namespace", "route", "target"}

// grafanaVar is a variable reference as Grafana writes it: $name,
// ${name}, ${name:format} or [[name]].
var grafanaVar = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?::[A-Za-z0-9_]+)?\}|\$([A-Za-z0-9_]+)|\[\[([A-Za-z0-9_]+)\]\]`)

// builtinVars are Grafana's global variables a PromQL query may use, with
// a value of theirs' kind (a duration, or a number).
var builtinVars = map[string]string{
	"__rate_interval": "1m", "__interval": "30s", "__range": "1h",
	"__interval_ms": "30000", "__range_s": "3600", "__range_ms": "3600000",
}

// varPlaceholder is what a dashboard variable reads as in the PromQL the
// checks parse: a name, valid in a label value and a regular expression;
// outside a string it reads as a metric name, which is reported.
const varPlaceholder = "__grafana_var_"

// substituteVars replaces Grafana's variables in a query, as Grafana would
// before sending it: builtins by a value of their kind, the dashboard's by
// a placeholder. It returns the user variables named.
func substituteVars(q string) (string, []string) {
	var named []string
	out := grafanaVar.ReplaceAllStringFunc(q, func(ref string) string {
		m := grafanaVar.FindStringSubmatch(ref)
		name := m[1] + m[2] + m[3]
		if v, ok := builtinVars[name]; ok {
			return v
		}
		named = append(named, name)
		return varPlaceholder + name
	})
	return out, named
}

// checkDashboardFile checks a dashboard JSON file against the metrics the
// README documents.
func checkDashboardFile(r *report, path, metricsDoc string) {
	metrics, err := readMetricTable(metricsDoc)
	if err != nil {
		r.fail(metricsDoc, "%v", err)
		return
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		r.fail(path, "%v", err)
		return
	}
	checkDashboard(r, path, raw, &alertDocs{metrics: metrics}, metricsDoc)
}

// checkDashboard checks a dashboard's JSON: it decodes strictly; it has
// the variables every query filters by; every panel queries Prometheus
// through the datasource variable (an import into any Grafana asks for
// one); panel ids are unique; every query parses as PromQL once Grafana's
// variables are substituted, names only metrics the bridge exports (the
// README's table in d, and runtimeMetrics), and filters the bridge's series
// by $namespace; and every metric the README documents is on a panel.
func checkDashboard(r *report, where string, raw []byte, d *alertDocs, metricsDoc string) {
	var db dashboard
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&db); err != nil {
		r.fail(where, "does not decode strictly as the dashboard JSON the checks know: %v", err)
		return
	}
	if dec.More() {
		r.fail(where, "more than one JSON value")
	}
	if db.SchemaVersion < minSchemaVersion {
		r.fail(where, "schemaVersion %d: want %d or later (Grafana 10.4 and after)", db.SchemaVersion, minSchemaVersion)
	}
	if db.UID == "" || db.Title == "" {
		r.fail(where, "uid %q, title %q: want both (the uid keeps the dashboard's address across imports)", db.UID, db.Title)
	}
	if db.ID != nil {
		r.fail(where, "id %d: want null, Grafana gives the id when it imports the dashboard", *db.ID)
	}

	declared := map[string]bool{}
	for i, v := range db.Templating.List {
		vw := fmt.Sprintf("%s: templating.list[%d] %s", where, i, v.Name)
		if declared[v.Name] {
			r.fail(vw, "variable %s is declared twice", v.Name)
		}
		declared[v.Name] = true
		switch {
		case v.Name == "datasource":
			if v.Type != "datasource" || v.Query != "prometheus" {
				r.fail(vw, "type %q, query %q: want a data source variable of type prometheus", v.Type, v.Query)
			}
		case v.Type == "query":
			checkDatasource(r, vw, v.Datasource)
			checkVarQuery(r, vw, v, d, metricsDoc)
		}
	}
	for _, name := range dashboardVars {
		if !declared[name] {
			r.fail(where, "no variable %s", name)
		}
	}

	ids := map[int]string{}
	used := map[string]bool{}
	count := 0
	var walk func(panels []dashboardPanel, in string)
	walk = func(panels []dashboardPanel, in string) {
		for i, p := range panels {
			pw := fmt.Sprintf("%s: %spanels[%d] %q", where, in, i, p.Title)
			count++
			if p.ID <= 0 {
				r.fail(pw, "id %d: want a positive id", p.ID)
			} else if other, dup := ids[p.ID]; dup {
				r.fail(pw, "id %d is the id of panel %q too: Grafana links, embeds and repeats panels by id", p.ID, other)
			}
			ids[p.ID] = p.Title
			if !panelTypes[p.Type] {
				r.fail(pw, "type %q is not a panel type of Grafana's core", p.Type)
			}
			if p.Title == "" {
				r.fail(pw, "no title")
			}
			if p.GridPos == nil || p.GridPos.W < 1 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H < 1 {
				r.fail(pw, "gridPos %+v: want h and w of at least 1 within the 24 columns", p.GridPos)
			}
			if p.Type == "row" {
				if len(p.Targets) > 0 {
					r.fail(pw, "a row with queries")
				}
				walk(p.Panels, fmt.Sprintf("panels[%d].", i))
				continue
			}
			if p.Type == "text" {
				continue
			}
			checkDatasource(r, pw, p.Datasource)
			if len(p.Targets) == 0 {
				r.fail(pw, "no query")
			}
			refs := map[string]bool{}
			for j, t := range p.Targets {
				tw := fmt.Sprintf("%s targets[%d] %s", pw, j, t.RefID)
				if t.RefID == "" || refs[t.RefID] {
					r.fail(tw, "refId %q: want one of its own", t.RefID)
				}
				refs[t.RefID] = true
				if t.Datasource != nil {
					checkDatasource(r, tw, t.Datasource)
				}
				for _, n := range checkPanelExpr(r, tw, t.Expr, declared, d, metricsDoc) {
					used[n] = true
				}
			}
		}
	}
	walk(db.Panels, "")
	for _, n := range sortedKeys(d.metrics) {
		shown := used[n]
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			shown = shown || used[n+suffix]
		}
		if !shown {
			r.fail(where, "%s documents %s, which no panel shows", metricsDoc, n)
		}
	}
	r.ok(fmt.Sprintf("Grafana dashboard %s: schemaVersion %d, %d panel(s) with unique ids, PromQL on exported metrics filtered by $namespace", where, db.SchemaVersion, count))
}

// checkDatasource wants the data source variable: a uid of one Grafana's
// Prometheus would not be found in another.
func checkDatasource(r *report, where string, ds *datasourceRef) {
	if ds == nil || ds.Type != "prometheus" || (ds.UID != "${datasource}" && ds.UID != "$datasource") {
		r.fail(where, "datasource %+v: want {type: prometheus, uid: ${datasource}}, the dashboard's data source variable", ds)
	}
}

var labelValuesQuery = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// checkVarQuery checks a query variable: label_values(selector, label) on
// a metric the bridge exports, the label the variable's name.
func checkVarQuery(r *report, where string, v dashboardVar, d *alertDocs, metricsDoc string) {
	m := labelValuesQuery.FindStringSubmatch(strings.TrimSpace(v.Query))
	if m == nil {
		r.fail(where, "query %q: want label_values(<metric of the bridge>, %s)", v.Query, v.Name)
		return
	}
	if m[2] != v.Name {
		r.fail(where, "query %q reads label %s into variable %s", v.Query, m[2], v.Name)
	}
	if v.Definition != "" && v.Definition != v.Query {
		r.fail(where, "definition %q differs from the query %q", v.Definition, v.Query)
	}
	if !v.IncludeAll || v.AllValue != ".*" {
		r.fail(where, "includeAll %v, allValue %q: want All as .*, which matches a series without the label too (a Prometheus that adds no namespace)", v.IncludeAll, v.AllValue)
	}
	q, _ := substituteVars(m[1])
	expr, err := parser.ParseExpr(q)
	if err != nil {
		r.fail(where, "query %q: %s is not a PromQL selector: %v", v.Query, m[1], err)
		return
	}
	names := metricNames(expr)
	if _, ok := expr.(*parser.VectorSelector); !ok || len(names) != 1 {
		r.fail(where, "query %q: %s is not one metric's selector", v.Query, m[1])
		return
	}
	if !d.exported(names[0]) {
		r.fail(where, "query %q names %s, which is not in %s's metric table (not a metric the bridge exports)", v.Query, names[0], metricsDoc)
	}
}

// checkPanelExpr checks one panel query and returns the metrics it names.
func checkPanelExpr(r *report, where, raw string, declared map[string]bool, d *alertDocs, metricsDoc string) []string {
	if strings.TrimSpace(raw) == "" {
		r.fail(where, "no expr")
		return nil
	}
	q, named := substituteVars(raw)
	for _, n := range named {
		if !declared[n] {
			r.fail(where, "expr %q names $%s, which the dashboard declares no variable for (Grafana sends it as is)", raw, n)
		}
	}
	expr, err := parser.ParseExpr(q)
	if err != nil {
		r.fail(where, "expr %q is not PromQL once Grafana's variables are substituted (%q): %v", raw, q, err)
		return nil
	}
	names := metricNames(expr)
	for _, n := range names {
		switch {
		case strings.HasPrefix(n, varPlaceholder):
			r.fail(where, "expr %q uses $%s outside a label matcher", raw, strings.TrimPrefix(n, varPlaceholder))
		case strings.HasPrefix(n, "hookbridge_"):
			if !d.exported(n) {
				r.fail(where, "expr names %s, which is not in %s's metric table (not a metric the bridge exports)", n, metricsDoc)
			}
		case !runtimeMetrics[n]:
			r.fail(where, "expr names %s, which is neither in %s's metric table nor a Go or process metric the checks allow", n, metricsDoc)
		}
	}
	// Every selector of the bridge's series keeps to the chosen namespace:
	// another namespace's bridge may have routes of the same names.
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok || !strings.HasPrefix(vs.Name, "hookbridge_") {
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name == "namespace" && m.Type == labels.MatchRegexp && m.Value == varPlaceholder+"namespace" {
				return nil
			}
		}
		r.fail(where, "expr %q: %s is not filtered by namespace=~\"$namespace\"", raw, vs.Name)
		return nil
	})
	return names
}

// dashboardKey is the data key of the ConfigMap that holds the dashboard;
// a ConfigMap with it counts as kind GrafanaDashboard.
const (
	dashboardKey  = "hookbridge.json"
	dashboardKind = "GrafanaDashboard"
)

// dashboardDocs is what a rendered dashboard ConfigMap is checked against:
// the dashboard file of the chart, and the label the Grafana sidecar looks
// for.
type dashboardDocs struct {
	path              string
	raw               []byte
	label, labelValue string
}

// loadDashboardDocs reads the dashboard file and parses label ("NAME=VALUE").
func loadDashboardDocs(r *report, path, label string) *dashboardDocs {
	raw, err := os.ReadFile(path)
	if err != nil {
		r.fail(path, "%v", err)
		return nil
	}
	name, value, ok := strings.Cut(label, "=")
	if !ok || name == "" {
		r.fail(path, "-dashboard-label %q: want NAME=VALUE", label)
		return nil
	}
	return &dashboardDocs{path: path, raw: raw, label: name, labelValue: value}
}

// checkDashboardConfigMap checks the render's dashboard ConfigMap: it
// carries the sidecar's label and holds the chart's dashboard file as is
// (the block scalar the chart writes drops the file's final newline), and
// that JSON passes checkDashboard.
func checkDashboardConfigMap(r *report, path string, o *objects, dd *dashboardDocs, d *alertDocs) {
	cm := o.dashboard
	if cm == nil {
		return
	}
	where := path + ": ConfigMap/" + cm.Name
	if dd == nil || d == nil {
		r.fail(where, "a Grafana dashboard, but no -dashboard and -metrics-doc to check it against")
		return
	}
	if got := cm.Labels[dd.label]; got != dd.labelValue {
		r.fail(where, "label %s is %q, want %q: the Grafana sidecar would not load the dashboard", dd.label, got, dd.labelValue)
	}
	if len(cm.Data) != 1 || len(cm.BinaryData) != 0 {
		r.fail(where, "want only the data key %s: the sidecar loads every key as a dashboard", dashboardKey)
	}
	data := cm.Data[dashboardKey]
	if data != strings.TrimSuffix(string(dd.raw), "\n") {
		r.fail(where, "%s differs from %s (%d bytes, the file %d): the chart renders something else than the dashboard it ships", dashboardKey, dd.path, len(data), len(dd.raw))
	}
	checkDashboard(r, where+": "+dashboardKey, []byte(data), d, "the README")
	r.ok(fmt.Sprintf("dashboard ConfigMap: label %s=%s, holds %s as is", dd.label, dd.labelValue, dd.path))
}
