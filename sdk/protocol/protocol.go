// Package protocol holds what both sides of the Hookbridge plugin protocol
// agree on: the go-plugin handshake (magic cookie and protocol version), the
// name the handler is served under, the environment the host passes to a
// plugin, the message size limits, and the go-plugin GRPCPlugin that
// registers the handler service on the plugin side and dispenses its client
// on the host side.
//
// The SDK (sdk.Serve) and the host (plugins/host) both import this package,
// so neither can drift from the other. Plugin authors do not need it: they
// call sdk.Serve. Authors of plugins in other languages find the same facts
// in handler.proto and docs/plugins.md.
package protocol

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	plugin "github.com/hashicorp/go-plugin"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/hookbridge/hookbridge/sdk/handlerpb"
)

// Version is the application protocol version of the handshake; it follows
// the proto package (hookbridge.handler.v1).
const Version = 1

// The magic cookie: the host sets the environment variable MagicCookieKey
// to MagicCookieValue when it starts a plugin. It tells a plugin binary that
// it was started by Hookbridge; it is not a security measure (AutoMTLS and
// the sha256 check are).
const (
	MagicCookieKey   = "HOOKBRIDGE_PLUGIN"
	MagicCookieValue = "hookbridge-handler"
)

// PluginName is the name the handler is dispensed under in the plugin set.
const PluginName = "handler"

// Environment variables the host sets for every plugin process, besides
// go-plugin's own (PLUGIN_PROTOCOL_VERSIONS, PLUGIN_CLIENT_CERT, ...).
const (
	// EnvMaxMessageBytes is the largest gRPC message, in bytes, either
	// side sends or accepts; the plugin's server must accept requests of
	// that size.
	EnvMaxMessageBytes = "HOOKBRIDGE_PLUGIN_MAX_MESSAGE_BYTES"
	// EnvPluginName is the plugin's name in the Hookbridge configuration.
	EnvPluginName = "HOOKBRIDGE_PLUGIN_NAME"
)

// DefaultMaxMessageBytes is the message size limit when none is configured:
// gRPC's own default receive limit, 4 MiB.
const DefaultMaxMessageBytes = 4 << 20

// Handshake is the go-plugin handshake both sides use.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  Version,
	MagicCookieKey:   MagicCookieKey,
	MagicCookieValue: MagicCookieValue,
}

// MaxMessageBytesFromEnv returns the limit the host passed in
// EnvMaxMessageBytes, or def when the variable is unset. A value that is
// not a positive integer is an error.
func MaxMessageBytesFromEnv(def int) (int, error) {
	s, ok := os.LookupEnv(EnvMaxMessageBytes)
	if !ok || s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("protocol: %s=%q is not a positive number of bytes", EnvMaxMessageBytes, s)
	}
	return n, nil
}

// ServerOptions are the gRPC server options of a plugin: message limits of
// maxBytes each way and the OpenTelemetry stats handler that continues the
// host's trace from the call's metadata. They are appended to the options
// go-plugin passes (which carry the TLS credentials).
func ServerOptions(maxBytes int) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxBytes),
		grpc.MaxSendMsgSize(maxBytes),
		grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithFilter(handleOnly))),
	}
}

// DialOptions are the gRPC dial options of the host: message limits of
// maxBytes each way and the OpenTelemetry stats handler that starts a client
// span per call and injects its context into the call's metadata.
func DialOptions(maxBytes int) []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxBytes), grpc.MaxCallSendMsgSize(maxBytes)),
		grpc.WithStatsHandler(boundedStatus{otelgrpc.NewClientHandler(otelgrpc.WithFilter(handleOnly))}),
	}
}

// MaxMessage bounds a message a plugin wrote (a handler's error, a failed
// call's status) as the host keeps it: such a message goes into every log
// line about the record's failure, its spans (an event attribute and a
// status description, which the OpenTelemetry SDK bounds neither) and its
// dead letter's header, and a plugin that quotes a record in its errors
// would otherwise have it logged whole, up to the message limit.
const MaxMessage = 1 << 10

// CutMessage is msg cut after max bytes, at a character's start, saying
// how much was cut.
func CutMessage(msg string, max int) string {
	if len(msg) <= max {
		return msg
	}
	n := max
	for n > 0 && !utf8.RuneStart(msg[n]) {
		n--
	}
	return fmt.Sprintf("%s... (%d more bytes)", msg[:n], len(msg)-n)
}

// boundedStatus hands the gRPC instrumentation a failed call's status with
// its message cut (CutMessage): the instrumentation makes
// the message the span's status description, which the OpenTelemetry SDK
// does not bound, and a plugin that fails a call itself (an uncaught
// exception in a Python plugin is UNKNOWN with its text) may send up to
// 16 MiB. The call's caller gets the status unchanged.
type boundedStatus struct{ stats.Handler }

var _ stats.Handler = boundedStatus{}

func (h boundedStatus) HandleRPC(ctx context.Context, rs stats.RPCStats) {
	if end, ok := rs.(*stats.End); ok && end.Error != nil {
		if st := status.Convert(end.Error); len(st.Message()) > MaxMessage {
			cut := *end
			cut.Error = status.Error(st.Code(), CutMessage(st.Message(), MaxMessage))
			rs = &cut
		}
	}
	h.Handler.HandleRPC(ctx, rs)
}

// handleOnly gives the stats handlers' spans to Handle calls alone. The
// long-lived HandleStream stream would be one span for the life of a process
// (each call on it gets its own client and server span instead:
// StartCallSpan), and go-plugin's own calls (health checks, the stdio and
// broker streams, shutdown) would be traces of their own, unrelated to any
// record.
func handleOnly(info *stats.RPCTagInfo) bool {
	return info.FullMethodName == handlerpb.Handler_Handle_FullMethodName
}

// CallSpanName is the name of the spans of one handler call, on both
// sides: the name the gRPC instrumentation gives a Handle call, so that a
// call looks the same in a trace whether it went as a Handle call of its
// own or on a HandleStream stream.
const CallSpanName = "hookbridge.handler.v1.Handler/Handle"

// StartCallSpan starts the span of one handler call made on a HandleStream
// stream: kind trace.SpanKindClient on the host, trace.SpanKindServer in
// the plugin, with the attributes the gRPC instrumentation puts on a Handle
// call's span. End it with EndCallSpan.
func StartCallSpan(ctx context.Context, tr trace.Tracer, kind trace.SpanKind) (context.Context, trace.Span) {
	return tr.Start(ctx, CallSpanName, trace.WithSpanKind(kind), trace.WithAttributes(callSpanAttrs...))
}

var callSpanAttrs = []attribute.KeyValue{semconv.RPCSystemNameGRPC, semconv.RPCMethod(CallSpanName)}

// EndCallSpan ends a call span with the gRPC status of its outcome in
// rpc.response.status_code ("OK", "DEADLINE_EXCEEDED": the code's name as
// the gRPC instrumentation reports it); any code but OK marks the span as
// an error with err's message.
func EndCallSpan(span trace.Span, err error) {
	code := grpccodes.OK
	if err != nil {
		code = status.Code(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.SetAttributes(semconv.RPCResponseStatusCode(codeName(code)))
	span.End()
}

// codeName spells a gRPC code as the gRPC specification does:
// DeadlineExceeded is "DEADLINE_EXCEEDED".
func codeName(c grpccodes.Code) string {
	var b strings.Builder
	prevLower := false
	for _, r := range c.String() {
		if prevLower && unicode.IsUpper(r) {
			b.WriteByte('_')
		}
		prevLower = unicode.IsLower(r)
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

// Plugin is the go-plugin GRPCPlugin of the handler service. On the plugin
// side Handler is registered; on the host side GRPCClient returns a
// handlerpb.HandlerClient and Handler is unused.
type Plugin struct {
	plugin.NetRPCUnsupportedPlugin
	Handler handlerpb.HandlerServer
}

var _ plugin.GRPCPlugin = (*Plugin)(nil)

// GRPCServer registers the handler service.
func (p *Plugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Handler == nil {
		return fmt.Errorf("protocol: no handler to serve")
	}
	handlerpb.RegisterHandlerServer(s, p.Handler)
	return nil
}

// GRPCClient returns a handlerpb.HandlerClient on the plugin's connection.
func (p *Plugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return handlerpb.NewHandlerClient(c), nil
}

// PluginSet is the go-plugin plugin set: the handler under PluginName.
// The plugin side passes its service, the host passes nil.
func PluginSet(handler handlerpb.HandlerServer) plugin.PluginSet {
	return plugin.PluginSet{PluginName: &Plugin{Handler: handler}}
}
