package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/fastnat/fastnat/config"
)

// cmdRun is "fastnat run -c FILE": the daemon. It runs until SIGTERM or
// SIGINT (detach, free everything, exit 0); SIGHUP re-reads FILE and keeps
// the running configuration if the file has errors.
func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("c", "/etc/fastnat/fastnat.toml", "configuration `file`")
	verbose := fs.Bool("v", false, "log debug messages")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg, err := config.Load(*file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	for _, w := range cfg.Warnings {
		log.Warn(w.Error())
	}
	d, err := startDaemon(cfg, log)
	if err != nil {
		log.Error("start failed", "err", err)
		return exitFailure
	}
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sig)
	for s := range sig {
		if s != syscall.SIGHUP {
			log.Info("stopping", "signal", s.String())
			break
		}
		if err := d.reload(*file); err != nil {
			log.Error("reload refused; keeping the running configuration", "err", err)
		}
	}
	if err := d.stop(); err != nil {
		log.Error("stop", "err", errors.Unwrap(err))
		return exitFailure
	}
	return exitOK
}
