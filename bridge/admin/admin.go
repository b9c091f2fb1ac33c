// Package admin serves the operator endpoints: GET /livez (the process is up),
// GET /readyz (every route joined its group, nothing stuck or disabled, not
// shutting down) and GET /metrics (Prometheus text format).
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// requestTimeout bounds the arrival of a whole request, its body included
// (probes and scrapes send none). Without it a client that announces a body
// and never sends it holds its connection for ever: the server reads the
// body to discard it before it answers, and the header and write timeouts do
// not bound that read.
var requestTimeout = 10 * time.Second

// Server is the admin HTTP endpoint.
type Server struct {
	ln  net.Listener
	srv *http.Server
}

// Listen binds addr. ready returns nil when the bridge is ready, else why not.
func Listen(addr string, ready func() error, metrics http.Handler, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin: listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintln(w, err)
			return
		}
		_, _ = fmt.Fprintln(w, "ok")
	})
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	// Probes and scrapes are short: an idle or stalled connection is
	// closed rather than kept for ever.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: requestTimeout,
		IdleTimeout: time.Minute, WriteTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	return &Server{ln: ln, srv: srv}, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx ends, then shuts down within a few seconds.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("admin: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}
