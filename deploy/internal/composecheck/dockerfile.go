package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// dockerfile is a parsed Dockerfile: its stages and global ARGs.
type dockerfile struct {
	path     string
	stages   []instructions.Stage
	metaArgs map[string]string // global ARG defaults ("" when none)
}

// parseDockerfile runs BuildKit's parser and instructions.Parse with the
// lint rules docker build --check applies at parse time; parser warnings
// and lint findings are problems.
func parseDockerfile(r *report, path string) *dockerfile {
	data, err := os.ReadFile(path)
	if err != nil {
		r.fail(path, "%v", err)
		return nil
	}
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		r.fail(path, "parse: %v", err)
		return nil
	}
	for _, w := range res.Warnings {
		line := 0
		if w.Location != nil {
			line = w.Location.Start.Line
		}
		r.fail(fmt.Sprintf("%s:%d", path, line), "parser: %s", w.Short)
	}
	lint := linter.New(&linter.Config{
		Warn: func(rule, _, url, msg string, loc []parser.Range) {
			line := 0
			if len(loc) > 0 {
				line = loc[0].Start.Line
			}
			r.fail(fmt.Sprintf("%s:%d", path, line), "lint %s: %s (%s)", rule, msg, url)
		},
	})
	stages, metaArgs, err := instructions.Parse(res.AST, lint)
	if err != nil {
		r.fail(path, "instructions: %v", err)
		return nil
	}
	if len(stages) == 0 {
		r.fail(path, "no FROM")
		return nil
	}
	df := &dockerfile{path: path, stages: stages, metaArgs: map[string]string{}}
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			df.metaArgs[kv.Key] = unquote(kv.ValueString())
		}
	}
	return df
}

// base is a stage's FROM with the global ARG defaults substituted.
func (df *dockerfile) base(s instructions.Stage) string {
	var env []string
	for k, v := range df.metaArgs {
		env = append(env, k+"="+v)
	}
	out, _, err := shell.NewLex('\\').ProcessWord(s.BaseName, shell.EnvsFromSlice(env))
	if err != nil {
		return s.BaseName
	}
	return out
}

// stageArgs are the ARG defaults declared inside a stage.
func stageArgs(s instructions.Stage) map[string]string {
	out := map[string]string{}
	for _, c := range s.Commands {
		if a, ok := c.(*instructions.ArgCommand); ok {
			for _, kv := range a.Args {
				out[kv.Key] = unquote(kv.ValueString())
			}
		}
	}
	return out
}

// mounts are a RUN's --mount flags. instructions.Parse keeps only their
// types until the command is expanded (BuildKit expands with the build
// args); the identity expander keeps the text as written.
func mounts(c *instructions.RunCommand) []*instructions.Mount {
	if err := c.Expand(func(w string) (string, error) { return w, nil }); err != nil {
		return nil
	}
	return instructions.GetMounts(c)
}

// unquote is an ARG default as the shell reads it ("a b" -> a b).
func unquote(v string) string {
	words, err := shell.NewLex('\\').ProcessWords(v, shell.EnvsFromSlice(nil))
	if err != nil {
		return v
	}
	return strings.Join(words, " ")
}

// contextSources are the paths a Dockerfile reads from the build context:
// COPY/ADD sources without --from, and bind mounts without from=.
func (df *dockerfile) contextSources() []string {
	var out []string
	for _, s := range df.stages {
		for _, c := range s.Commands {
			switch c := c.(type) {
			case *instructions.CopyCommand:
				if c.From == "" {
					out = append(out, c.SourcePaths...)
				}
			case *instructions.AddCommand:
				out = append(out, c.SourcePaths...)
			case *instructions.RunCommand:
				for _, m := range mounts(c) {
					if m.Type == instructions.MountTypeBind && m.From == "" {
						src := m.Source
						if src == "" {
							src = "."
						}
						out = append(out, src)
					}
				}
			}
		}
	}
	return out
}

func checkDockerfile(r *report, path, context, role string) {
	df := parseDockerfile(r, path)
	if df == nil {
		return
	}
	r.ok(fmt.Sprintf("%s parsed (%d stage(s), BuildKit lint clean)", path, len(df.stages)))
	checkBaseImages(r, df)
	checkContext(r, df, context)
	switch role {
	case "hookbridge":
		checkHookbridgeImage(r, df, context)
	case "receiver":
		checkReceiverImage(r, df)
	case "":
	default:
		r.fail(path, "unknown -role %q", role)
	}
}

// checkBaseImages: every external base has an explicit tag other than latest.
func checkBaseImages(r *report, df *dockerfile) {
	names := map[string]bool{}
	for _, s := range df.stages {
		b := df.base(s)
		if b == "scratch" || names[strings.ToLower(b)] {
			names[strings.ToLower(s.Name)] = true
			continue
		}
		names[strings.ToLower(s.Name)] = true
		ref := b
		if i := strings.Index(ref, "@"); i >= 0 {
			continue // pinned by digest
		}
		slash := strings.LastIndex(ref, "/")
		colon := strings.LastIndex(ref, ":")
		if colon <= slash || strings.HasSuffix(ref, ":latest") {
			r.fail(df.path, "FROM %s: pin a tag (not latest) so builds are reproducible", b)
		}
	}
}

// checkContext: every context source exists and survives .dockerignore.
func checkContext(r *report, df *dockerfile, context string) {
	pm, err := dockerignore(context)
	if err != nil {
		r.fail(filepath.Join(context, ".dockerignore"), "%v", err)
		return
	}
	for _, src := range df.contextSources() {
		if src == "." {
			continue // whole context: checkGoSources looks inside
		}
		rel := filepath.Clean(src)
		if _, err := os.Stat(filepath.Join(context, rel)); err != nil {
			r.warn(df.path, "%s is not in the build context (yet): the image build fails until it exists", src)
			continue
		}
		if excluded(pm, rel) {
			r.fail(df.path, "%s is excluded by %s/.dockerignore: the build cannot read it", src, context)
		}
	}
}

func dockerignore(context string) (*patternmatcher.PatternMatcher, error) {
	f, err := os.Open(filepath.Join(context, ".dockerignore"))
	if os.IsNotExist(err) {
		return patternmatcher.New(nil)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, err
	}
	return patternmatcher.New(patterns)
}

func excluded(pm *patternmatcher.PatternMatcher, rel string) bool {
	ex, err := pm.MatchesOrParentMatches(filepath.ToSlash(rel))
	return err == nil && ex
}

func checkHookbridgeImage(r *report, df *dockerfile, context string) {
	p := df.path
	if len(df.stages) < 2 {
		r.fail(p, "want a multi-stage build (build stage + runtime stage), got %d stage(s)", len(df.stages))
		return
	}
	build, final := df.stages[0], df.stages[len(df.stages)-1]

	// Build stage: Go toolchain, cache mounts, static reproducible binaries.
	if !strings.HasPrefix(df.base(build), "golang:") {
		r.fail(p, "build stage FROM %s: want the golang image", df.base(build))
	}
	var runText, envText string
	caches := map[string]bool{}
	for _, c := range build.Commands {
		switch c := c.(type) {
		case *instructions.RunCommand:
			runText += strings.Join(c.CmdLine, " ") + "\n"
			for _, m := range mounts(c) {
				if m.Type == instructions.MountTypeCache {
					caches[m.Target] = true
				}
			}
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				envText += kv.Key + "=" + kv.Value + "\n"
			}
		}
	}
	for _, t := range []string{"/go/pkg/mod", "/root/.cache/go-build"} {
		if !caches[t] {
			r.fail(p, "build stage: no RUN --mount=type=cache,target=%s", t)
		}
	}
	if !strings.Contains(envText+runText, "CGO_ENABLED=0") {
		r.fail(p, "build stage: CGO_ENABLED=0 not set (the runtime image has no libc)")
	}
	for _, want := range []string{"-trimpath", "-s -w", "-X main.version=${VERSION}", "./cmd/hookbridge"} {
		if !strings.Contains(runText, want) {
			r.fail(p, "build stage: the go build lacks %q", want)
		}
	}
	args := stageArgs(build)
	if _, ok := args["VERSION"]; !ok {
		r.fail(p, "build stage: no ARG VERSION")
	}
	plugins, ok := args["PLUGINS"]
	if !ok {
		r.fail(p, "build stage: no ARG PLUGINS")
	}
	if !strings.Contains(runText, "exit 1") {
		r.fail(p, "build stage: a missing PLUGINS directory must fail the build")
	}
	pkgs := []string{"./cmd/hookbridge"}
	for _, dir := range strings.Fields(plugins) {
		abs := filepath.Join(context, dir)
		switch {
		case !isDir(abs):
			r.warn(p, "PLUGINS default lists %s, which does not exist yet: the default image build fails until it does (or pass --build-arg PLUGINS=)", dir)
		case fileExists(filepath.Join(abs, "go.mod")):
			// A plugin in a module of its own: the Dockerfile builds it from
			// its directory; check that .dockerignore sends its files.
			checkTreeSent(r, df, context, dir)
		case !hasGoFiles(abs):
			r.warn(p, "PLUGINS default lists %s, which has no Go files yet: the default image build fails until it does (or pass --build-arg PLUGINS=)", dir)
		default:
			pkgs = append(pkgs, "./"+strings.TrimPrefix(filepath.ToSlash(filepath.Clean(dir)), "./"))
		}
	}
	checkGoSources(r, df, context, pkgs)

	// Runtime stage: distroless static (or scratch), non-root, exec-form entrypoint.
	fb := df.base(final)
	if !strings.HasPrefix(fb, "gcr.io/distroless/static") && fb != "scratch" {
		r.fail(p, "runtime stage FROM %s: want gcr.io/distroless/static*:nonroot or scratch", fb)
	}
	var user string
	var entry, cmd []string
	var entryShell, cmdShell bool
	exposed := map[string]bool{}
	copied := map[string]bool{}
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.EntrypointCommand:
			entry, entryShell = c.CmdLine, c.PrependShell
		case *instructions.CmdCommand:
			cmd, cmdShell = c.CmdLine, c.PrependShell
		case *instructions.ExposeCommand:
			for _, port := range c.Ports {
				exposed[strings.TrimSuffix(port, "/tcp")] = true
			}
		case *instructions.HealthCheckCommand:
			r.fail(p, "runtime stage: HEALTHCHECK cannot run in a shell-less image; the orchestrator probes /livez and /readyz")
		case *instructions.CopyCommand:
			copied[c.DestPath] = true
		}
	}
	uid := strings.SplitN(user, ":", 2)[0]
	switch {
	case user == "":
		r.fail(p, "runtime stage: no USER (want 65532:65532, distroless nonroot)")
	case uid == "0" || uid == "root":
		r.fail(p, "runtime stage: USER %s is root", user)
	case strings.Trim(uid, "0123456789") != "":
		r.warn(p, "runtime stage: USER %s is not numeric: Kubernetes runAsNonRoot cannot verify it without runAsUser", user)
	}
	if entryShell || !slices.Equal(entry, []string{"hookbridge"}) {
		r.fail(p, `runtime stage: ENTRYPOINT must be ["hookbridge"] (exec form, so SIGTERM reaches it), got %q`, entry)
	}
	if cmdShell || !slices.Equal(cmd, []string{"run", "-c", "/etc/hookbridge/hookbridge.yaml"}) {
		r.fail(p, `runtime stage: CMD must be ["run","-c","/etc/hookbridge/hookbridge.yaml"], got %q`, cmd)
	}
	if !exposed["9464"] {
		r.fail(p, "runtime stage: EXPOSE 9464 (admin endpoint) missing")
	}
	if !copied["/usr/local/bin/hookbridge"] {
		r.fail(p, "runtime stage: hookbridge is not copied to /usr/local/bin/hookbridge")
	}
	r.ok("hookbridge image contract")
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// hasGoFiles: the directory itself holds a non-test .go file (a package).
func hasGoFiles(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, f := range m {
		if !strings.HasSuffix(f, "_test.go") {
			return true
		}
	}
	return false
}

// checkTreeSent: no non-test file of the tree under dir is excluded by
// .dockerignore.
func checkTreeSent(r *report, df *dockerfile, context, dir string) {
	pm, err := dockerignore(context)
	if err != nil {
		return
	}
	_ = filepath.WalkDir(filepath.Join(context, dir), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, "_test.go") || strings.Contains(path, "/testdata/") {
			return nil
		}
		rel, _ := filepath.Rel(context, path)
		if excluded(pm, rel) {
			r.fail(df.path, "%s is excluded by .dockerignore, but the plugin module %s builds from it", rel, dir)
		}
		return nil
	})
}

// checkGoSources: every file the image's go build compiles (go list -deps of
// the built packages, inside this module) is sent by .dockerignore.
func checkGoSources(r *report, df *dockerfile, context string, pkgs []string) {
	pm, err := dockerignore(context)
	if err != nil {
		return // reported by checkContext
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		if excluded(pm, f) {
			r.fail(df.path, "%s is excluded by .dockerignore", f)
		}
	}
	absCtx, _ := filepath.Abs(context)
	cmd := exec.Command("go", append([]string{"list", "-deps", "-f",
		`{{if not .Standard}}{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{range .EmbedFiles}} {{.}}{{end}}{{end}}`}, pkgs...)...)
	cmd.Dir = absCtx
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly", "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		r.fail(df.path, "go list -deps %s: %v: %s", strings.Join(pkgs, " "), err, strings.TrimSpace(stderr.String()))
		return
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		rel, err := filepath.Rel(absCtx, fields[0])
		if err != nil || strings.HasPrefix(rel, "..") {
			continue // a dependency from the module cache
		}
		for _, f := range fields[1:] {
			n++
			if excluded(pm, filepath.Join(rel, f)) {
				r.fail(df.path, "%s is compiled into the image but excluded by .dockerignore", filepath.Join(rel, f))
			}
		}
	}
	r.ok(fmt.Sprintf(".dockerignore sends all %d Go files the image compiles", n))
}

func checkReceiverImage(r *report, df *dockerfile) {
	p := df.path
	final := df.stages[len(df.stages)-1]
	if b := df.base(final); !strings.HasPrefix(b, "python:3.11-slim") {
		r.fail(p, "FROM %s: want python:3.11-slim", b)
	}
	srcs := strings.Join(df.contextSources(), " ")
	for _, want := range []string{"examples/receiver-fastapi/requirements.txt", "examples/receiver-fastapi/app.py"} {
		if !strings.Contains(srcs, want) {
			r.fail(p, "does not COPY %s", want)
		}
	}
	var cmd []string
	var user string
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.CmdCommand:
			cmd = c.CmdLine
		case *instructions.UserCommand:
			user = c.User
		}
	}
	if len(cmd) < 2 || cmd[0] != "uvicorn" || cmd[1] != "app:app" {
		r.fail(p, `CMD must start ["uvicorn", "app:app", ...], got %q`, cmd)
	}
	if u := strings.SplitN(user, ":", 2)[0]; u == "" || u == "0" || u == "root" {
		r.fail(p, "USER %q: run the receiver as non-root", user)
	}
	req := filepath.Join(filepath.Dir(p), "..", "..", "examples", "receiver-fastapi", "requirements.txt")
	if data, err := os.ReadFile(req); err == nil && !strings.Contains(strings.ToLower(string(data)), "uvicorn") {
		r.fail(req, "does not list uvicorn, which the image's CMD runs")
	}
	r.ok("receiver image contract")
}
