// Command testplugin is the plugin the host's integration tests start. The
// record's "x-test" header selects what it does:
//
//	"" or "ack"         reply with the record's value (every reply carries a "pid" header)
//	"sleep:DURATION"    log "testplugin sleeping", wait (or until the call is canceled), then reply
//	"exit"              exit the process in the middle of the call
//	"crash-once:PATH"   exit if the file PATH does not exist yet (creating it), else reply
//	"hang"              log "testplugin hanging", then never answer, ignoring cancellation
//	"permanent"         fail with sdk.Permanent
//	"retry-after:DUR"   fail with sdk.RetryAfter
//	"error"             fail with a plain error
//	"long-error:N"      fail with a plain error whose message is N bytes long
//	"panic"             panic
//	"big-reply:N"       reply with a value of N bytes
//	"env:NAME"          reply with the value of the environment variable NAME
//	"log"               write a log line, then reply
//	"long-log:N"        write an error log line with an attribute of N bytes, then reply
//	"describe"          reply with the message as JSON (what crossed the wire)
//	"deadline"          reply with the milliseconds left before the call's deadline, or "none"
//	"raw-stdout:N"      write a line of N bytes to the process's original standard output
//	                    (file descriptor 1, as a plugin in another language, or a library
//	                    or a child process of a Go plugin, writes it), then reply
//
// With TESTPLUGIN_UNARY_ONLY=1 in its environment it serves only the Handle
// call, not HandleStream, as a plugin built against the first version of
// the protocol does. With TESTPLUGIN_STREAM_STALL=1 its HandleStream says it
// is ready and then never reads the stream, as a plugin stuck in a
// sequential read loop would. With TESTPLUGIN_NO_PACKING=1 its ready message
// does not offer to take packed calls, as a plugin built before packing does,
// and a packed message from the host ends its stream. With
// TESTPLUGIN_OWN_STREAM=1 it serves HandleStream itself, as a plugin that does
// not use sdk.Serve may: an answer above the message limit is left to gRPC,
// which ends the stream with RESOURCE_EXHAUSTED; there the x-test "no-answer"
// gets an answer with its call_id and nothing else, "dup-answer" (else
// like "ack") gets its answer twice, after answers for call ids the host
// never sent, and "bad-utf8" an answer that Go's protobuf cannot decode: an
// error message that is not UTF-8, as a plugin in another language may send
// (a Handle call gets the handler's error, which sdk.Service makes UTF-8).
// With
// TESTPLUGIN_UNARY_ONLY=1, the x-test "grpc-canceled" fails the Handle call
// with the gRPC status CANCELED, as a handler whose own downstream call was
// canceled may, and "grpc-long-error:N" with the status UNKNOWN and a
// message N bytes long, as an uncaught exception in a Python plugin does.
// With TESTPLUGIN_HEALTH_HANG=1 the process completes the handshake and
// never answers the health check.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/hookbridge/hookbridge/sdk"
	"github.com/hookbridge/hookbridge/sdk/handlerpb"
	"github.com/hookbridge/hookbridge/sdk/protocol"
)

func main() {
	log := sdk.NewLogger()
	stdout := os.Stdout // go-plugin's Serve replaces os.Stdout; this stays file descriptor 1
	pid := []byte(strconv.Itoa(os.Getpid()))
	reply := func(value []byte) (*sdk.Result, error) {
		return &sdk.Result{Outputs: []sdk.Output{{Value: value, Headers: []sdk.Header{{Key: "pid", Value: pid}}}}}, nil
	}
	h := sdk.HandlerFunc(func(ctx context.Context, msg *sdk.Message) (*sdk.Result, error) {
		v, _ := msg.Header("x-test")
		verb, arg, _ := strings.Cut(string(v), ":")
		switch verb {
		case "", "ack", "dup-answer":
			return reply(msg.Value)
		case "sleep":
			d, _ := time.ParseDuration(arg)
			log.Debug("testplugin sleeping", "id", msg.ID)
			select {
			case <-time.After(d):
				return reply(msg.Value)
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		case "exit":
			os.Exit(3)
		case "crash-once":
			if _, err := os.Stat(arg); errors.Is(err, os.ErrNotExist) {
				_ = os.WriteFile(arg, pid, 0o600)
				// A log line, relayed at its level, then a plain line on
				// the process's own standard error, as a Python
				// traceback would be (go-plugin's Serve redirects only
				// os.Stderr, the variable).
				log.Error("testplugin crashing once", "id", msg.ID)
				_, _ = os.NewFile(2, "stderr").WriteString("Traceback: testplugin crashed on " + msg.ID + "\n")
				os.Exit(3)
			}
			return reply(msg.Value)
		case "hang":
			log.Debug("testplugin hanging", "id", msg.ID)
			select {}
		case "permanent":
			return nil, sdk.Permanent(errors.New("bad record"))
		case "retry-after":
			d, _ := time.ParseDuration(arg)
			return nil, sdk.RetryAfter(d, errors.New("slow down"))
		case "error":
			return nil, errors.New("downstream unavailable")
		case "bad-utf8":
			return nil, errors.New("bad \xff record")
		case "long-error":
			n, _ := strconv.Atoi(arg)
			return nil, errors.New("downstream answered " + strings.Repeat("x", n))
		case "panic":
			panic("testplugin: asked to panic")
		case "big-reply":
			n, _ := strconv.Atoi(arg)
			return reply(bytes.Repeat([]byte("x"), n))
		case "outputs":
			n, _ := strconv.Atoi(arg)
			return &sdk.Result{Outputs: make([]sdk.Output, n)}, nil
		case "env":
			return reply([]byte(os.Getenv(arg)))
		case "describe":
			b, err := json.Marshal(struct {
				*sdk.Message
				KeyNull   bool
				ValueNull bool
			}{msg, msg.Key == nil, msg.Value == nil})
			if err != nil {
				return nil, err
			}
			return reply(b)
		case "deadline":
			dl, ok := ctx.Deadline()
			if !ok {
				return reply([]byte("none"))
			}
			return reply([]byte(strconv.FormatInt(time.Until(dl).Milliseconds(), 10)))
		case "long-log":
			n, _ := strconv.Atoi(arg)
			log.Error("testplugin long log line", "id", msg.ID, "value", strings.Repeat("x", n))
			return reply(msg.Value)
		case "raw-stdout":
			n, _ := strconv.Atoi(arg)
			if _, err := stdout.Write(append(bytes.Repeat([]byte("x"), n), '\n')); err != nil {
				return nil, err
			}
			return reply(msg.Value)
		case "log":
			log.InfoContext(ctx, "testplugin log line", "id", msg.ID)
			return reply(msg.Value)
		}
		return nil, sdk.Permanent(fmt.Errorf("unknown x-test %q", v))
	})
	switch {
	case os.Getenv("TESTPLUGIN_UNARY_ONLY") == "1":
		serveService(unaryOnly{svc: sdk.Service(h)})
		return
	case os.Getenv("TESTPLUGIN_STREAM_STALL") == "1":
		serveService(stalled{sdk.Service(h)})
		return
	case os.Getenv("TESTPLUGIN_NO_PACKING") == "1":
		serveService(unpacked{sdk.Service(h)})
		return
	case os.Getenv("TESTPLUGIN_OWN_STREAM") == "1":
		serveService(ownStream{sdk.Service(h)}, grpc.ForceServerCodec(rawCodec{}))
		return
	case os.Getenv("TESTPLUGIN_HEALTH_HANG") == "1":
		serveService(sdk.Service(h), grpc.ChainUnaryInterceptor(hangHealthChecks))
		return
	}
	if err := sdk.Serve(h, sdk.WithLogger(log)); err != nil {
		fmt.Fprintln(os.Stderr, "testplugin:", err)
		os.Exit(1)
	}
}

// unaryOnly hides HandleStream: the embedded Unimplemented server answers
// it with UNIMPLEMENTED.
type unaryOnly struct {
	handlerpb.UnimplementedHandlerServer
	svc handlerpb.HandlerServer
}

func (u unaryOnly) Handle(ctx context.Context, req *handlerpb.HandleRequest) (*handlerpb.HandleResponse, error) {
	verb, arg, _ := strings.Cut(testHeader(req), ":")
	switch verb {
	case "grpc-canceled":
		return nil, status.Error(codes.Canceled, "testplugin: the handler's downstream call was canceled")
	case "grpc-long-error":
		// A plugin without the SDK that fails the call itself, quoting a
		// downstream answer, as an uncaught exception does in a Python
		// plugin (status UNKNOWN).
		n, _ := strconv.Atoi(arg)
		return nil, status.Error(codes.Unknown, "downstream answered "+strings.Repeat("x", n))
	}
	return u.svc.Handle(ctx, req)
}

// testHeader returns the request's x-test header.
func testHeader(req *handlerpb.HandleRequest) string {
	for _, h := range req.GetRecord().GetHeaders() {
		if h.GetKey() == "x-test" {
			return string(h.GetValue())
		}
	}
	return ""
}

// hangHealthChecks holds every health check for good, as a plugin whose
// health service is stuck does.
func hangHealthChecks(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if info.FullMethod == "/grpc.health.v1.Health/Check" {
		select {}
	}
	return handler(ctx, req)
}

// stalled reads nothing from its stream after saying it is ready.
type stalled struct {
	handlerpb.HandlerServer
}

func (s stalled) HandleStream(st handlerpb.Handler_HandleStreamServer) error {
	if err := st.Send(&handlerpb.StreamResponse{}); err != nil {
		return err
	}
	<-st.Context().Done()
	return nil
}

// unpacked serves HandleStream without packing: it takes batches out of the
// ready message and refuses packed calls.
type unpacked struct {
	handlerpb.HandlerServer
}

func (u unpacked) HandleStream(st handlerpb.Handler_HandleStreamServer) error {
	return u.HandlerServer.HandleStream(unpackedStream{st})
}

type unpackedStream struct {
	handlerpb.Handler_HandleStreamServer
}

func (s unpackedStream) Send(r *handlerpb.StreamResponse) error {
	r.Batches = false
	return s.Handler_HandleStreamServer.Send(r)
}

func (s unpackedStream) Recv() (*handlerpb.StreamRequest, error) {
	r, err := s.Handler_HandleStreamServer.Recv()
	if err == nil && len(r.GetCalls()) > 0 {
		return nil, errors.New("testplugin: packed calls, but the ready message did not offer to take them")
	}
	return r, err
}

// ownStream serves HandleStream with a loop of its own that answers each
// call with the embedded service's Handle: unlike sdk.Serve's, it does not
// check an answer against the message limit before it sends it. It does not
// take packed calls and ignores cancel messages and the call's deadline.
type ownStream struct {
	handlerpb.HandlerServer
}

func (o ownStream) HandleStream(st handlerpb.Handler_HandleStreamServer) error {
	if err := st.Send(&handlerpb.StreamResponse{}); err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	var sendMu sync.Mutex // Send is not safe for concurrent use
	for {
		m, err := st.Recv()
		if err != nil {
			return err
		}
		if m.GetCallId() == 0 || m.GetCancel() {
			continue
		}
		wg.Go(func() {
			r := &handlerpb.StreamResponse{CallId: m.GetCallId()}
			resp, err := o.Handle(st.Context(), m.GetRequest())
			switch {
			case testHeader(m.GetRequest()) == "no-answer":
				// the call_id alone
			case err != nil:
				r.Unavailable = err.Error()
			default:
				r.Response = resp
			}
			sendMu.Lock()
			defer sendMu.Unlock()
			if testHeader(m.GetRequest()) == "dup-answer" {
				// A confused plugin: an answer for a call that does
				// not exist, one for the ready message's id, and the
				// call's answer twice.
				_ = st.Send(&handlerpb.StreamResponse{CallId: m.GetCallId() + 1<<32, Response: resp})
				_ = st.Send(&handlerpb.StreamResponse{CallId: 0, Response: resp})
				_ = st.Send(r)
			}
			if testHeader(m.GetRequest()) == "bad-utf8" {
				_ = st.SendMsg(badUTF8Answer(m.GetCallId()))
				return
			}
			// An answer above the limit fails here, and gRPC has then
			// ended the stream with RESOURCE_EXHAUSTED: Recv returns.
			_ = st.Send(r)
		})
	}
}

// rawCodec is gRPC's proto codec, but for a rawMessage, which it sends as
// it is.
type rawCodec struct{}

// rawMessage is an encoded message that Go's protobuf would refuse to
// encode.
type rawMessage []byte

func (rawCodec) Marshal(v any) ([]byte, error) {
	if b, ok := v.(rawMessage); ok {
		return b, nil
	}
	return proto.Marshal(v.(proto.Message))
}

func (rawCodec) Unmarshal(data []byte, v any) error { return proto.Unmarshal(data, v.(proto.Message)) }

func (rawCodec) Name() string { return "proto" }

// badUTF8Answer is the StreamResponse answering call id with a retryable
// error whose message is not UTF-8.
func badUTF8Answer(id uint64) rawMessage {
	e := protowire.AppendTag(nil, 1, protowire.VarintType) // Error.kind
	e = protowire.AppendVarint(e, uint64(handlerpb.ErrorKind_ERROR_KIND_RETRYABLE))
	e = protowire.AppendTag(e, 2, protowire.BytesType) // Error.message
	e = protowire.AppendBytes(e, []byte("bad \xff record"))
	resp := protowire.AppendTag(nil, 2, protowire.BytesType) // HandleResponse.error
	resp = protowire.AppendBytes(resp, e)
	m := protowire.AppendTag(nil, 1, protowire.VarintType) // StreamResponse.call_id
	m = protowire.AppendVarint(m, id)
	m = protowire.AppendTag(m, 2, protowire.BytesType) // StreamResponse.response
	return protowire.AppendBytes(m, resp)
}

// serveService serves svc with go-plugin directly, as a plugin that does
// not use sdk.Serve does.
func serveService(svc handlerpb.HandlerServer, extra ...grpc.ServerOption) {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: protocol.Handshake,
		Plugins:         protocol.PluginSet(svc),
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts, protocol.ServerOptions(protocol.DefaultMaxMessageBytes)...)
			return grpc.NewServer(append(opts, extra...)...)
		},
	})
}
