// Command composecheck validates Hookbridge's deployment files without a
// container engine or a cluster, with the libraries the real tools use:
//
//	composecheck compose    -f deploy/compose/compose.yaml [-env-out FILE]
//	composecheck dockerfile [-role hookbridge|receiver] [-context DIR] FILE
//	composecheck manifests  -kinds Deployment,ConfigMap,... [-static-members] [-config-out FILE] [-env-out FILE]
//	                        [-alerts-doc docs/operations.md -metrics-doc README.md [-alerts-as-documented]]
//	                        [-dashboard deploy/grafana/hookbridge.json [-dashboard-label NAME=VALUE]] RENDERED.yaml
//	composecheck dashboard  -metrics-doc README.md deploy/grafana/hookbridge.json
//
// compose loads the file with compose-go (the loader of `docker compose`):
// schema validation, interpolation, cross-references; then checks what one
// `docker compose up` needs to work (health checks behind every
// service_healthy, topics created before the bridge starts, the signing
// secret shared, bind-mounted files and build contexts present).
//
// dockerfile parses with BuildKit's parser and instructions.Parse (what
// `docker build` runs), with BuildKit's lint rules on, and checks the image
// contract (multi-stage, cache mounts, static, non-root, entrypoint).
//
// manifests reads `helm template` output, decodes every object strictly
// into the Kubernetes API types (an unknown or misplaced field fails), and
// checks how the objects fit together. A PrometheusRule's expressions are
// parsed with Prometheus' PromQL parser and checked against the alerts
// docs/operations.md documents and the metrics the README documents. A
// ConfigMap holding hookbridge.json is the Grafana dashboard (kind
// GrafanaDashboard): it must hold the -dashboard file as is.
//
// dashboard decodes a Grafana dashboard strictly and parses every query as
// PromQL, with Grafana's variables substituted: each names only metrics the
// README documents (or a Go or process metric the checks allow), filtered by
// $namespace, and each documented metric is on a panel; panel ids are unique.
//
// Problems are printed as "file: message" and make the exit status 1;
// warnings are printed and do not.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage:
  composecheck compose    -f compose.yaml [-env-out FILE] [-env-service NAME]
  composecheck dockerfile [-role hookbridge|receiver] [-context DIR] Dockerfile
  composecheck manifests  -kinds K1,K2,... [-static-members] [-config-out FILE] [-env-out FILE]
                          [-alerts-doc operations.md -metrics-doc README.md [-alerts-as-documented]]
                          [-dashboard dashboard.json [-dashboard-label NAME=VALUE]] rendered.yaml
                          (a headless Service counts as kind HeadlessService, the dashboard's
                          ConfigMap as kind GrafanaDashboard)
  composecheck dashboard  -metrics-doc README.md dashboard.json
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	r := &report{}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	switch args[0] {
	case "compose":
		file := fs.String("f", "compose.yaml", "compose file")
		envOut := fs.String("env-out", "", "write the resolved environment of -env-service here (KEY=VALUE lines)")
		envService := fs.String("env-service", "hookbridge", "service whose environment -env-out writes")
		if fs.Parse(args[1:]) != nil {
			return 2
		}
		checkCompose(r, *file, *envOut, *envService)
	case "dockerfile":
		role := fs.String("role", "", "hookbridge or receiver: also check that image's contract")
		context := fs.String("context", ".", "build context the Dockerfile's sources are relative to")
		if fs.Parse(args[1:]) != nil {
			return 2
		}
		if fs.NArg() != 1 {
			fmt.Fprint(stderr, usage)
			return 2
		}
		checkDockerfile(r, fs.Arg(0), *context, *role)
	case "manifests":
		kinds := fs.String("kinds", "", "comma-separated kinds the render must contain, exactly (a headless Service is HeadlessService)")
		staticMembers := fs.Bool("static-members", false, "the config must make each pod a static member (kafka.group_instance_id from the pod's name)")
		configOut := fs.String("config-out", "", "write the ConfigMap's hookbridge.yaml here")
		envOut := fs.String("env-out", "", "write a placeholder for every secret env var here (KEY=VALUE lines)")
		alertsDoc := fs.String("alerts-doc", "", "docs/operations.md: the alerts a PrometheusRule must keep as documented")
		metricsDoc := fs.String("metrics-doc", "", "README.md: the metrics the bridge exports (its Observability metric table)")
		asDocumented := fs.Bool("alerts-as-documented", false, "the PrometheusRule must hold every documented alert, expression and for exactly as documented")
		dashboardFile := fs.String("dashboard", "", "the Grafana dashboard JSON a dashboard ConfigMap must hold as is (needs -metrics-doc)")
		dashboardLabel := fs.String("dashboard-label", "grafana_dashboard=1", "the label NAME=VALUE the dashboard ConfigMap must carry (the Grafana sidecar's)")
		if fs.Parse(args[1:]) != nil {
			return 2
		}
		if fs.NArg() != 1 || (*alertsDoc == "") != (*metricsDoc == "") || (*asDocumented && *alertsDoc == "") || (*dashboardFile != "" && *metricsDoc == "") {
			fmt.Fprint(stderr, usage)
			return 2
		}
		var alerts *alertDocs
		if *alertsDoc != "" {
			if alerts = loadAlertDocs(r, *alertsDoc, *metricsDoc, *asDocumented); alerts == nil {
				return r.print(stdout, stderr)
			}
		}
		var dashboard *dashboardDocs
		if *dashboardFile != "" {
			if dashboard = loadDashboardDocs(r, *dashboardFile, *dashboardLabel); dashboard == nil {
				return r.print(stdout, stderr)
			}
		}
		checkManifests(r, fs.Arg(0), splitList(*kinds), *configOut, *envOut, *staticMembers, alerts, dashboard)
	case "dashboard":
		metricsDoc := fs.String("metrics-doc", "", "README.md: the metrics the bridge exports (its Observability metric table)")
		if fs.Parse(args[1:]) != nil {
			return 2
		}
		if fs.NArg() != 1 || *metricsDoc == "" {
			fmt.Fprint(stderr, usage)
			return 2
		}
		checkDashboardFile(r, fs.Arg(0), *metricsDoc)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "composecheck: unknown command %q\n%s", args[0], usage)
		return 2
	}
	return r.print(stdout, stderr)
}

// report collects problems (failures) and warnings, to print them all at once.
type report struct {
	problems []string
	warnings []string
	checked  []string
}

func (r *report) fail(file, format string, args ...any) {
	r.problems = append(r.problems, file+": "+fmt.Sprintf(format, args...))
}

func (r *report) warn(file, format string, args ...any) {
	r.warnings = append(r.warnings, file+": "+fmt.Sprintf(format, args...))
}

// ok records a check that passed, for the summary line.
func (r *report) ok(what string) { r.checked = append(r.checked, what) }

func (r *report) print(stdout, stderr io.Writer) int {
	for _, w := range r.warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	for _, p := range r.problems {
		fmt.Fprintln(stderr, "FAIL:", p)
	}
	if len(r.problems) > 0 {
		fmt.Fprintf(stderr, "%d problem(s)\n", len(r.problems))
		return 1
	}
	fmt.Fprintf(stdout, "ok: %s\n", strings.Join(r.checked, "; "))
	return 0
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// writeEnv writes KEY=VALUE lines, sorted; a value with a newline is refused.
func writeEnv(path string, env map[string]string) error {
	var b strings.Builder
	for _, k := range sortedKeys(env) {
		if strings.ContainsAny(env[k], "\n\r") {
			return fmt.Errorf("env %s: value has a newline", k)
		}
		fmt.Fprintf(&b, "%s=%s\n", k, env[k])
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}
