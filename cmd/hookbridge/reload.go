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

// catchHangups takes SIGHUP from the signal's default, which ends the
// process: run calls it first, so that a SIGHUP sent while the bridge starts
// (before reloadOnHangup listens) is not the end of the process but a reload
// once the bridge runs. The channel keeps one.
func catchHangups() chan os.Signal {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup
}

// reloadOnHangup re-reads the config file on every SIGHUP that hup (from
// catchHangups) receives and hands it to the running bridge. An invalid file
// is rejected with every problem logged, and the running configuration
// stays. The returned func stops listening; a SIGHUP after it is ignored:
// restoring the signal's default would let one sent while the process
// finishes its shutdown (flushing spans, writing the CPU profile) kill it.
func reloadOnHangup(ctx context.Context, b *bridge.Bridge, path string, log *slog.Logger, hup chan os.Signal) (stop func()) {
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
				if ctx.Err() != nil {
					log.Info("reload dropped: the bridge is shutting down", "file", path)
					return
				}
				log.Error("reload failed", "file", path, "error", err)
				continue
			}
			log.Info("configuration reloaded", "file", path)
			logAdvice(log, cfg)
		}
	}()
	return func() {
		signal.Ignore(syscall.SIGHUP)
		signal.Stop(hup)
		cancel()
		<-done
	}
}
