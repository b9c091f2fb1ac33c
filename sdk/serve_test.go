package sdk

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/hookbridge/hookbridge/sdk/protocol"
)

func slogDiscard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestServeRefusesToRunWithoutTheHost(t *testing.T) {
	t.Setenv(protocol.MagicCookieKey, "")
	h := HandlerFunc(func(context.Context, *Message) (*Result, error) { return nil, nil })
	if err := Serve(h, WithLogger(slogDiscard())); !errors.Is(err, ErrNotStartedByHost) {
		t.Fatalf("Serve = %v, want ErrNotStartedByHost", err)
	}
}

func TestServeRejectsABadLimitFromTheHost(t *testing.T) {
	t.Setenv(protocol.MagicCookieKey, protocol.MagicCookieValue)
	t.Setenv(protocol.EnvMaxMessageBytes, "lots")
	h := HandlerFunc(func(context.Context, *Message) (*Result, error) { return nil, nil })
	if err := Serve(h, WithLogger(slogDiscard())); err == nil {
		t.Fatal("Serve accepted a non-numeric message limit")
	}
}
