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
		if ok && inherited(k) {
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
