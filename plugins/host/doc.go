// Package host runs Hookbridge's handler plugins: the go-plugin host side.
//
// A Pool is the delivery target of one configured plugin
// (config.Plugin). It keeps between instances.min and instances.max
// processes of the plugin's command, each serving up to
// concurrency_per_instance calls at once, and:
//
//   - starts a process when every running one is saturated (a cold start),
//     and stops processes idle for longer than idle_timeout down to
//     instances.min; with min 0 the pool scales to zero and the next record
//     cold-starts a process;
//   - detects a crashed process (it exited, or a call failed at the
//     transport), kills it and replaces it with exponential backoff; the
//     call that was in flight is retried on another process, transparently
//     and bounded by the caller's context, up to a few times;
//   - bounds each call by the plugin's timeout, maps the handler's error
//     kinds onto target errors, and refuses records larger than the
//     message limit with a permanent error that names the config key.
//
// Every process is started with mutual TLS (go-plugin's AutoMTLS protocol,
// with a key every gRPC stack accepts: see mtls.go), the sha256 check when
// one is configured, its own process group (a Ctrl-C in the bridge's terminal does
// not reach it: plugins are stopped last, after the calls in flight), and a
// minimal environment (see Options). Its log lines go to the bridge's log
// with plugin=<name>.
//
// Package bridge never imports this package; cmd/hookbridge wires it in
// through bridge.PluginFactory (see Factory).
package host
