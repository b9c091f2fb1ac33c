// Package inproc connects a gRPC client to a server in the same process over
// an in-memory listener, with the wire protocol's message limits on the
// client's side (the server carries its own, protocol.ServerOptions).
package inproc

import (
	"context"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/hookbridge/hookbridge/sdk/protocol"
)

// Serve serves srv on an in-memory listener and returns a connection to it
// that accepts messages of up to maxBytes. stop closes the connection, stops
// the server (calls in flight fail) and waits until it stopped serving.
func Serve(srv *grpc.Server, maxBytes int) (conn *grpc.ClientConn, stop func(), err error) {
	lis := bufconn.Listen(1 << 20)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	dial := append([]grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	}, protocol.DialOptions(maxBytes)...)
	conn, err = grpc.NewClient("passthrough:///inproc", dial...)
	if err != nil {
		srv.Stop()
		<-served
		return nil, nil, err
	}
	return conn, func() {
		_ = conn.Close()
		srv.Stop()
		<-served
	}, nil
}
