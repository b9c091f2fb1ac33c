package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/hookbridge/hookbridge/bridge"
	"github.com/hookbridge/hookbridge/bridge/config"
)

// reloadOnHangup re-reads the config file on every SIGHUP and hands it to the
// running bridge. An invalid file is rejected with every problem logged, and
// the running configuration stays. The returned func stops listening.
func reloadOnHangup(ctx context.Context, b *bridge.Bridge, path string, log *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			}
			cfg, err := config.Load(path)
			if err != nil {
				log.Error("reload rejected: the new configuration is invalid; the running one stays", "file", path, "problems", err.Error())
				continue
			}
			if err := b.Reload(ctx, cfg); err != nil {
				log.Error("reload failed", "file", path, "error", err)
				continue
			}
			log.Info("configuration reloaded", "file", path)
			logAdvice(log, cfg)
		}
	}()
	return func() {
		signal.Stop(hup)
		cancel()
		<-done
	}
}
