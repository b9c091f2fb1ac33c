package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/hookbridge/hookbridge/sdk/handlerpb"
	"github.com/hookbridge/hookbridge/sdk/protocol"
)

// tracerName names the tracer of the spans the SDK starts itself.
const tracerName = "github.com/hookbridge/hookbridge/sdk"

// HandleStream implements the streaming form of the wire service: it says
// it is ready, then runs every call the host sends concurrently, each in its
// own span continued from the call's metadata, and answers each when its
// handler returns. A cancellation cancels the call's context. When the
// stream ends (the host closed it, or the connection is gone) the calls
// still running are cancelled and waited for.
func (s *service) HandleStream(stream handlerpb.Handler_HandleStreamServer) error {
	var sendMu sync.Mutex
	send := func(r *handlerpb.StreamResponse) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return stream.Send(r)
	}
	if err := send(&handlerpb.StreamResponse{}); err != nil { // ready
		return err
	}
	tracer := otel.GetTracerProvider().Tracer(tracerName)
	propagator := otel.GetTextMapPropagator()
	var (
		mu      sync.Mutex
		cancels = make(map[uint64]context.CancelFunc)
		calls   sync.WaitGroup
	)
	defer func() {
		mu.Lock()
		for _, cancel := range cancels {
			cancel()
		}
		mu.Unlock()
		calls.Wait()
	}()
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		id := req.GetCallId()
		switch {
		case id == 0 || (req.GetRequest() == nil && !req.GetCancel()):
			return status.Errorf(codes.InvalidArgument, "sdk: stream message without a call_id or a request (call_id %d)", id)
		case req.GetCancel():
			mu.Lock()
			if cancel := cancels[id]; cancel != nil {
				cancel()
			}
			mu.Unlock()
			continue
		}
		if !s.begin() {
			if err := send(&handlerpb.StreamResponse{CallId: id, Unavailable: "the plugin is stopping"}); err != nil {
				return err
			}
			continue
		}
		ctx, cancel := context.WithCancel(propagator.Extract(stream.Context(), propagation.MapCarrier(req.GetMetadata())))
		mu.Lock()
		cancels[id] = cancel
		mu.Unlock()
		calls.Go(func() {
			defer s.end()
			out := &handlerpb.StreamResponse{CallId: id, Response: s.streamCall(ctx, tracer, req.GetRequest())}
			mu.Lock()
			delete(cancels, id)
			mu.Unlock()
			cancel()
			if n := proto.Size(out); n > s.maxBytes {
				// Sent as is, it would end the stream and every call on it.
				out.Response = responseToProto(nil, Permanent(fmt.Errorf("sdk: the answer to %s (%d bytes) exceeds the %d-byte message limit (plugins.%s.max_message_bytes)",
					req.GetRequest().GetId(), n, s.maxBytes, pluginName())))
			}
			// An error here means the stream is gone; the host retries the
			// call on another process.
			_ = send(out)
		})
	}
}

// streamCall runs one call of a stream in its server span.
func (s *service) streamCall(ctx context.Context, tracer trace.Tracer, req *handlerpb.HandleRequest) *handlerpb.HandleResponse {
	ctx, span := protocol.StartCallSpan(ctx, tracer, trace.SpanKindServer)
	res, err := s.call(ctx, messageFromProto(req))
	protocol.EndCallSpan(span, nil)
	return responseToProto(res, err)
}

// pluginName is the plugin's name in the bridge's configuration, for
// messages that name a setting.
func pluginName() string {
	if n := os.Getenv(protocol.EnvPluginName); n != "" {
		return n
	}
	return "<name>"
}
