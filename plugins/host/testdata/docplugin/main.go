// Command docplugin is a handler plugin written from docs/plugins.md ("The
// protocol, for plugins in any language") and handler.proto alone: it uses
// neither the SDK nor go-plugin, only gRPC, the generated protocol types and
// the standard library, as a plugin in a language without an SDK would. The
// host's tests run it to prove that the documented protocol is enough.
//
// The record's "x-test" header selects what it does: "ack" (or none)
// answers without outputs; "reply" answers with one output whose value is
// the record's, with the headers "deadline-ms" (what was left of the call's
// deadline) and "traceparent" (from the call's metadata); "permanent" and
// "retry-after" fail with those kinds; "crash" exits the process in the
// middle of the call.
//
// With DOCPLUGIN_STREAM=1 it also serves HandleStream, with packing.
// DOCPLUGIN_CERT=cn-only makes its certificate name localhost in its
// subject's common name only, without a subject alternative name.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/hookbridge/hookbridge/sdk/handlerpb"
)

func main() {
	if err := run(); err != nil {
		logLine("error", err.Error())
		os.Exit(1)
	}
}

// logLine writes a log line to stderr in the documented JSON format.
func logLine(level, msg string) {
	b, _ := json.Marshal(map[string]string{
		"@level": level, "@message": msg,
		"@timestamp": time.Now().Format("2006-01-02T15:04:05.000000Z07:00"),
	})
	fmt.Fprintln(os.Stderr, string(b))
}

func run() error {
	// 1. the magic cookie and the protocol version
	if os.Getenv("HOOKBRIDGE_PLUGIN") != "hookbridge-handler" {
		return fmt.Errorf("docplugin: not started by Hookbridge")
	}
	if !slices.Contains(strings.Split(os.Getenv("PLUGIN_PROTOCOL_VERSIONS"), ","), "1") {
		return fmt.Errorf("docplugin: no common protocol version in %q", os.Getenv("PLUGIN_PROTOCOL_VERSIONS"))
	}
	// 2. TLS with the host's certificate as the only client CA
	clientCAs := x509.NewCertPool()
	if !clientCAs.AppendCertsFromPEM([]byte(os.Getenv("PLUGIN_CLIENT_CERT"))) {
		return fmt.Errorf("docplugin: no certificate in PLUGIN_CLIENT_CERT")
	}
	cert, der, err := selfSigned(os.Getenv("DOCPLUGIN_CERT") == "cn-only")
	if err != nil {
		return err
	}
	creds := credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    clientCAs,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	})
	// 4. message limits
	maxBytes := 4 << 20
	if s := os.Getenv("HOOKBRIDGE_PLUGIN_MAX_MESSAGE_BYTES"); s != "" {
		if maxBytes, err = strconv.Atoi(s); err != nil {
			return err
		}
	}
	srv := grpc.NewServer(grpc.Creds(creds), grpc.MaxRecvMsgSize(maxBytes), grpc.MaxSendMsgSize(maxBytes))
	// 3. the Handler service, the health service, go-plugin's controller
	var h handlerpb.HandlerServer = unary{}
	if os.Getenv("DOCPLUGIN_STREAM") == "1" {
		h = streaming{}
	}
	handlerpb.RegisterHandlerServer(srv, h)
	hs := health.NewServer()
	hs.SetServingStatus("plugin", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	stop := make(chan struct{})
	var once sync.Once
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "plugin.GRPCController",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Shutdown", Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			if err := dec(new(emptypb.Empty)); err != nil {
				return nil, err
			}
			once.Do(func() { close(stop) })
			return new(emptypb.Empty), nil
		}}},
	}, struct{}{})

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() { _ = srv.Serve(lis) }()
	// 5. the handshake line, the first on stdout
	fmt.Printf("1|1|tcp|%s|grpc|%s\n", lis.Addr(), base64.RawStdEncoding.EncodeToString(der))
	logLine("info", "docplugin serving")
	// 7. stop when the parent changes
	parent := os.Getppid()
	for {
		select {
		case <-stop:
			srv.Stop()
			return nil
		case <-time.After(time.Second):
			if os.Getppid() != parent {
				srv.GracefulStop()
				return nil
			}
		}
	}
}

// selfSigned makes the plugin's certificate for localhost.
func selfSigned(cnOnly bool) (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if !cnOnly {
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, der, nil
}

// handle answers one call; md is its metadata.
func handle(ctx context.Context, req *handlerpb.HandleRequest, md map[string]string) *handlerpb.HandleResponse {
	test := ""
	for _, h := range req.GetRecord().GetHeaders() {
		if h.GetKey() == "x-test" {
			test = string(h.GetValue())
		}
	}
	switch test {
	case "", "ack":
		return &handlerpb.HandleResponse{}
	case "reply":
		left := "none"
		if dl, ok := ctx.Deadline(); ok {
			left = strconv.FormatInt(time.Until(dl).Milliseconds(), 10)
		}
		return &handlerpb.HandleResponse{Outputs: []*handlerpb.Output{{
			Value: req.GetRecord().GetValue(),
			Headers: []*handlerpb.Header{
				{Key: "deadline-ms", Value: []byte(left)},
				{Key: "traceparent", Value: []byte(md["traceparent"])},
			},
		}}}
	case "permanent":
		return &handlerpb.HandleResponse{Error: &handlerpb.Error{Kind: handlerpb.ErrorKind_ERROR_KIND_PERMANENT, Message: "docplugin: refused " + req.GetId()}}
	case "retry-after":
		return &handlerpb.HandleResponse{Error: &handlerpb.Error{Kind: handlerpb.ErrorKind_ERROR_KIND_RETRY_AFTER, Message: "docplugin: busy", RetryAfterMs: 1500}}
	case "crash":
		os.Exit(3)
	}
	return &handlerpb.HandleResponse{Error: &handlerpb.Error{Kind: handlerpb.ErrorKind_ERROR_KIND_PERMANENT, Message: "docplugin: unknown x-test " + test}}
}

// unary serves Handle only; HandleStream answers UNIMPLEMENTED.
type unary struct {
	handlerpb.UnimplementedHandlerServer
}

func (unary) Handle(ctx context.Context, req *handlerpb.HandleRequest) (*handlerpb.HandleResponse, error) {
	md := map[string]string{}
	if in, ok := metadata.FromIncomingContext(ctx); ok {
		for k, v := range in {
			if len(v) > 0 {
				md[k] = v[len(v)-1]
			}
		}
	}
	return handle(ctx, req, md), nil
}

// streaming serves HandleStream too, as the doc's stream rules say.
type streaming struct{ unary }

func (streaming) HandleStream(st handlerpb.Handler_HandleStreamServer) error {
	var send sync.Mutex
	reply := func(m *handlerpb.StreamResponse) {
		send.Lock()
		defer send.Unlock()
		_ = st.Send(m)
	}
	reply(&handlerpb.StreamResponse{Batches: true}) // ready
	var mu sync.Mutex
	cancels := map[uint64]context.CancelFunc{}
	start := func(m *handlerpb.StreamRequest) {
		mu.Lock()
		defer mu.Unlock()
		if m.GetCancel() {
			if c := cancels[m.GetCallId()]; c != nil {
				c()
			}
			return
		}
		ctx, cancel := context.WithCancel(st.Context())
		if d, ok := parseTimeout(m.GetMetadata()["grpc-timeout"]); ok {
			ctx, cancel = context.WithTimeout(st.Context(), d)
		}
		cancels[m.GetCallId()] = cancel
		go func() {
			resp := handle(ctx, m.GetRequest(), m.GetMetadata())
			mu.Lock()
			delete(cancels, m.GetCallId())
			mu.Unlock()
			cancel()
			reply(&handlerpb.StreamResponse{CallId: m.GetCallId(), Response: resp})
		}()
	}
	for {
		m, err := st.Recv()
		if err != nil {
			return nil
		}
		if len(m.GetCalls()) > 0 {
			for _, c := range m.GetCalls() {
				start(c)
			}
			continue
		}
		start(m)
	}
}

// parseTimeout reads gRPC's timeout format: digits and a unit.
func parseTimeout(s string) (time.Duration, bool) {
	if len(s) < 2 {
		return 0, false
	}
	n, err := strconv.ParseInt(s[:len(s)-1], 10, 64)
	if err != nil {
		return 0, false
	}
	unit := map[byte]time.Duration{'H': time.Hour, 'M': time.Minute, 'S': time.Second, 'm': time.Millisecond, 'u': time.Microsecond, 'n': time.Nanosecond}[s[len(s)-1]]
	if unit == 0 {
		return 0, false
	}
	return time.Duration(n) * unit, true
}
