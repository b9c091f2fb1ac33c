package host

import (
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/hookbridge/hookbridge/sdk/protocol"
)

// passThrough names the variables of the bridge's environment a plugin
// inherits; a name ending in "_" is a prefix. Everything else (credentials
// the configuration expanded from ${VAR}, say) stays in the bridge.
var passThrough = []string{
	"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "LC_", "TZ", "TMPDIR",
	"SYSTEMROOT", "SYSTEMDRIVE", "WINDIR", "COMSPEC", "PATHEXT", "TEMP", "TMP", // Windows basics
	"OTEL_", // OpenTelemetry: the plugin exports its spans where the bridge does
}

// notInherited are OTEL_ variables the bridge itself does not follow: its
// service name and its sampler come from its configuration. A plugin that
// inherited them would name its spans after the bridge's environment
// instead of hookbridge-plugin-<name>, or sample on its own (always_on would
// export spans under bridge spans that never are) instead of as the bridge
// decided. Set in a plugin's env they apply.
var notInherited = []string{"OTEL_SERVICE_NAME", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"}

// envResourceAttributes is the variable whose service.name member, if any,
// a plugin does not inherit either (see notInherited); its other members
// (the pod, the environment) describe the plugin too.
const envResourceAttributes = "OTEL_RESOURCE_ATTRIBUTES"

// pluginEnv builds a plugin's environment, lowest precedence first: the
// pass-through variables of the host environment (given as os.Environ
// returns it), extra (set by the caller, e.g. the bridge's OTLP endpoint),
// the plugin's configured env, and the protocol variables, which cannot be
// overridden. go-plugin appends its own (magic cookie, protocol versions,
// AutoMTLS certificate) after these.
func pluginEnv(hostEnv []string, extra, configured map[string]string, name string, maxBytes int) []string {
	vars := map[string]string{}
	for _, kv := range hostEnv {
		k, v, ok := strings.Cut(kv, "=")
		if ok && inherited(k) && !slices.Contains(notInherited, k) {
			if k == envResourceAttributes {
				if v = withoutServiceName(v); v == "" {
					continue
				}
			}
			vars[k] = v
		}
	}
	for k, v := range extra {
		vars[k] = v
	}
	for k, v := range configured {
		vars[k] = v
	}
	vars[protocol.EnvPluginName] = name
	vars[protocol.EnvMaxMessageBytes] = strconv.Itoa(maxBytes)
	env := make([]string, 0, len(vars))
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	slices.Sort(env)
	return env
}

// inherited reports whether the host variable k reaches plugins.
func inherited(k string) bool {
	for _, p := range passThrough {
		if k == p || (strings.HasSuffix(p, "_") && strings.HasPrefix(k, p)) {
			return true
		}
	}
	return false
}

// hostEnviron is the bridge's environment; a variable so tests can replace it.
var hostEnviron = os.Environ

// withoutServiceName returns the members of an OTEL_RESOURCE_ATTRIBUTES
// value (key=value, comma-separated) but service.name, in their order.
func withoutServiceName(attrs string) string {
	var kept []string
	for m := range strings.SplitSeq(attrs, ",") {
		if k, _, _ := strings.Cut(m, "="); strings.TrimSpace(k) != "service.name" {
			kept = append(kept, m)
		}
	}
	return strings.Join(kept, ",")
}
