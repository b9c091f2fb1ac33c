package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/sirupsen/logrus"
)

// The services the demo is made of, and what each must be.
var composeServices = []string{"kafka", "kafka-init", "jaeger", "receiver", "hookbridge", "producer"}

const hookbridgeConfigPath = "/etc/hookbridge/hookbridge.yaml"

// finishMargin is what a grace period must leave after shutdown_timeout: the
// bridge allows itself 5 s after the drain for its commits and group leaves,
// and flushes its spans for up to 5 s more.
const finishMargin = 10 * time.Second

// logHook turns compose-go's logged warnings (an unset variable, an
// obsolete key) into problems.
type logHook struct {
	r    *report
	file string
}

func (h logHook) Levels() []logrus.Level {
	return []logrus.Level{logrus.PanicLevel, logrus.FatalLevel, logrus.ErrorLevel, logrus.WarnLevel}
}

func (h logHook) Fire(e *logrus.Entry) error {
	h.r.fail(h.file, "compose-go: %s", e.Message)
	return nil
}

func checkCompose(r *report, file, envOut, envService string) {
	abs, err := filepath.Abs(file)
	if err != nil {
		r.fail(file, "%v", err)
		return
	}
	logrus.AddHook(logHook{r, file})
	logrus.SetOutput(devNull{})

	// The process environment is left out on purpose: the file must work
	// with its own defaults, whatever the CI machine has set.
	opts, err := cli.NewProjectOptions([]string{abs},
		cli.WithWorkingDirectory(filepath.Dir(abs)),
		cli.WithInterpolation(true),
		cli.WithResolvedPaths(true),
		cli.WithConsistency(true),
	)
	if err != nil {
		r.fail(file, "%v", err)
		return
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		r.fail(file, "load: %v", err)
		return
	}
	r.ok(fmt.Sprintf("%s loaded and validated by compose-go (project %q, %d services)", file, p.Name, len(p.Services)))

	for _, name := range composeServices {
		if _, ok := p.Services[name]; !ok {
			r.fail(file, "service %q missing", name)
		}
	}
	for _, name := range sortedKeys(p.Services) {
		checkService(r, file, p, p.Services[name])
	}
	checkImage(r, file, p, "kafka", "apache/kafka:")
	checkImage(r, file, p, "kafka-init", "apache/kafka:")
	checkImage(r, file, p, "producer", "apache/kafka:")
	checkImage(r, file, p, "jaeger", "jaegertracing/jaeger:2.")
	checkBridgeService(r, file, p)

	if envOut != "" {
		s, ok := p.Services[envService]
		if !ok {
			r.fail(file, "-env-service %q: no such service", envService)
			return
		}
		env := map[string]string{}
		for k, v := range s.Environment {
			if v != nil {
				env[k] = *v
			}
		}
		if err := writeEnv(envOut, env); err != nil {
			r.fail(file, "%v", err)
		}
	}
}

type devNull struct{}

func (devNull) Write(b []byte) (int, error) { return len(b), nil }

// checkService: depends_on conditions can be met, build inputs and bind
// mounts exist, images are pinned.
func checkService(r *report, file string, p *types.Project, s types.ServiceConfig) {
	where := fmt.Sprintf("%s: services.%s", file, s.Name)
	for dep, d := range s.DependsOn {
		target, ok := p.Services[dep]
		if !ok {
			continue // compose-go reports it
		}
		switch d.Condition {
		case types.ServiceConditionHealthy:
			if target.HealthCheck == nil || target.HealthCheck.Disable || len(target.HealthCheck.Test) == 0 {
				r.fail(where, "depends_on %s: service_healthy, but %s has no healthcheck: it would never start", dep, dep)
			}
		case types.ServiceConditionCompletedSuccessfully:
			if target.Restart != "" && target.Restart != types.RestartPolicyNo {
				r.fail(where, "depends_on %s: service_completed_successfully, but %s restarts (%s)", dep, dep, target.Restart)
			}
		}
	}
	if s.Build != nil {
		ctx := s.Build.Context
		if st, err := os.Stat(ctx); err != nil || !st.IsDir() {
			r.fail(where, "build.context %s does not exist", ctx)
		} else {
			df := s.Build.Dockerfile
			if df == "" {
				df = "Dockerfile"
			}
			if !filepath.IsAbs(df) {
				df = filepath.Join(ctx, df)
			}
			// Parse, lint and context only: `composecheck dockerfile -role`
			// checks each image's contract.
			checkDockerfile(r, df, ctx, "")
		}
	} else if s.Image != "" {
		ref := s.Image
		if colon := strings.LastIndex(ref, ":"); colon <= strings.LastIndex(ref, "/") || strings.HasSuffix(ref, ":latest") {
			r.fail(where, "image %s: pin a tag (not latest)", ref)
		}
	}
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind {
			if _, err := os.Stat(v.Source); err != nil {
				r.fail(where, "bind mount source %s does not exist", v.Source)
			}
		}
	}
	if s.ReadOnly && !hasTmp(s) {
		r.warn(where, "read_only without a tmpfs /tmp")
	}
}

func hasTmp(s types.ServiceConfig) bool {
	for _, t := range s.Tmpfs {
		if strings.SplitN(t, ":", 2)[0] == "/tmp" {
			return true
		}
	}
	for _, v := range s.Volumes {
		if v.Target == "/tmp" {
			return true
		}
	}
	return false
}

func checkImage(r *report, file string, p *types.Project, service, prefix string) {
	if s, ok := p.Services[service]; ok && !strings.HasPrefix(s.Image, prefix) {
		r.fail(file, "services.%s.image %q: want %s...", service, s.Image, prefix)
	}
}

// checkBridgeService: the bridge's config, read from the file compose
// mounts, agrees with the rest of the project.
func checkBridgeService(r *report, file string, p *types.Project) {
	s, ok := p.Services["hookbridge"]
	if !ok {
		return
	}
	where := file + ": services.hookbridge"
	var cfgPath string
	for _, v := range s.Volumes {
		if v.Target == hookbridgeConfigPath {
			cfgPath = v.Source
		}
	}
	if cfgPath == "" {
		r.fail(where, "nothing mounted at %s (the image's CMD reads it)", hookbridgeConfigPath)
		return
	}
	cfg, err := loadHBConfig(cfgPath)
	if err != nil {
		r.fail(cfgPath, "%v", err)
		return
	}
	env := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			env[k] = *v
		}
	}

	// Every ${VAR} without a default is set for the container.
	for _, v := range requiredVars(cfg.raw) {
		if _, ok := env[v]; !ok {
			r.fail(where, "%s references ${%s}, which the service's environment does not set", cfgPath, v)
		}
	}

	// The admin endpoint is reachable from outside the container and published.
	host, port, err := listenPort(cfg.Admin.Listen)
	switch {
	case err != nil:
		r.fail(cfgPath, "admin.listen: %v (default 127.0.0.1:9464 is unreachable outside the container)", err)
	case host != "0.0.0.0" && host != "" && host != "[::]":
		r.fail(cfgPath, "admin.listen %s: in a container it must listen on 0.0.0.0", cfg.Admin.Listen)
	default:
		published := false
		for _, pc := range s.Ports {
			if strconv.Itoa(int(pc.Target)) == port {
				published = true
			}
		}
		if !published {
			r.warn(where, "admin port %s is not published", port)
		}
	}

	// Brokers, OTLP endpoint and webhook URLs point at services of this project.
	for _, b := range cfg.Kafka.Brokers {
		h := strings.SplitN(b, ":", 2)[0]
		if _, ok := p.Services[h]; !ok {
			r.fail(cfgPath, "kafka.brokers %s: no service %q in %s", b, h, file)
		}
	}
	if u, err := url.Parse(cfg.Telemetry.OTLPEndpoint); err != nil || u.Hostname() != "jaeger" || u.Port() != "4317" {
		r.fail(cfgPath, "telemetry.otlp_endpoint %q: want http://jaeger:4317", cfg.Telemetry.OTLPEndpoint)
	}
	receiverEnv := map[string]string{}
	if rs, ok := p.Services["receiver"]; ok {
		for k, v := range rs.Environment {
			if v != nil {
				receiverEnv[k] = *v
			}
		}
	}
	for _, route := range cfg.Routes {
		wh := route.Target.Webhook
		if wh == nil {
			continue
		}
		u, err := url.Parse(expandVars(wh.URL, env))
		if err != nil || u.Hostname() == "" {
			r.fail(cfgPath, "routes[%s].target.webhook.url %q: not a URL", route.Name, wh.URL)
		} else if _, ok := p.Services[u.Hostname()]; !ok {
			r.fail(cfgPath, "routes[%s] webhook host %q is not a service of %s", route.Name, u.Hostname(), file)
		}
		// The receiver verifies with the secret the bridge signs with.
		for _, sec := range wh.SigningSecrets {
			v := expandVars(sec, env)
			shared := false
			for _, rv := range receiverEnv {
				// WEBHOOK_SECRETS-style lists: comma or space separated.
				for _, f := range strings.FieldsFunc(rv, func(r rune) bool { return r == ',' || r == ' ' }) {
					if f == v {
						shared = true
					}
				}
			}
			if !shared {
				r.fail(where, "routes[%s]: signing secret %s is not given to the receiver service", route.Name, sec)
			}
		}
	}

	// Every topic exists before the bridge starts (it never creates topics and
	// fails fast on a missing dead-letter topic).
	if init, ok := p.Services["kafka-init"]; ok {
		script := strings.Join(append(append([]string{}, init.Entrypoint...), init.Command...), " ")
		for _, t := range cfg.topics() {
			if !strings.Contains(script, "--topic "+t+" ") && !strings.HasSuffix(script, "--topic "+t) {
				r.fail(file, "services.kafka-init does not create topic %q, which %s uses", t, cfgPath)
			}
		}
		if d, ok := s.DependsOn["kafka-init"]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
			r.fail(where, "depends_on kafka-init: want condition service_completed_successfully")
		}
	}

	// SIGTERM drain fits in the grace period.
	shutdown, err := cfg.shutdown()
	if err != nil {
		r.fail(cfgPath, "shutdown_timeout: %v", err)
	} else {
		grace := 10 * time.Second // compose's default
		if s.StopGracePeriod != nil {
			grace = time.Duration(*s.StopGracePeriod)
		}
		if grace <= shutdown+finishMargin {
			r.fail(where, "stop_grace_period %s must exceed shutdown_timeout %s by more than %s", grace, shutdown, finishMargin)
		}
	}
	r.ok(fmt.Sprintf("%s agrees with %s (%d topic(s), secret shared, admin on %s)", cfgPath, file, len(cfg.topics()), cfg.Admin.Listen))
}
