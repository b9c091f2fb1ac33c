package sdk

import (
	"context"
	"log/slog"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/hookbridge/hookbridge/sdk/protocol"
)

// A SIGTERM that comes before go-plugin made the gRPC server (the first
// milliseconds of the process) must still stop the plugin once the server
// exists; it used to be dropped, and the plugin served on until the host
// stopped it.
func TestSignalBeforeTheServerExistsStopsIt(t *testing.T) {
	signals := make(chan os.Signal, 1)
	started, stop := make(chan struct{}), make(chan struct{})
	defer close(stop)
	svc := newService(HandlerFunc(func(context.Context, *Message) (*Result, error) { return &Result{}, nil }),
		slog.New(slog.DiscardHandler), protocol.DefaultMaxMessageBytes)
	o := options{logger: slog.New(slog.DiscardHandler), gracePeriod: time.Second}
	var srv *grpc.Server
	handled := make(chan struct{})
	signals <- syscall.SIGTERM // before there is a server
	go func() {
		stopOnSignal(signals, started, stop, func() *grpc.Server { return srv }, svc, o)
		close(handled)
	}()

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv = grpc.NewServer()
	close(started)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	select {
	case <-served:
	case <-time.After(time.Minute): // a hang guard only
		srv.Stop()
		t.Fatal("the server was not stopped by the signal that came before it existed")
	}
	<-handled
}
