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
	"github.com/fastnat/fastnat/dataplane"
)

// cmdRun is "fastnat run -c FILE": the daemon. It runs until SIGTERM or
// SIGINT (detach, free everything, exit 0); SIGHUP (or `fastnat reload`
// on the control socket) re-reads FILE and keeps the running
// configuration if the file has errors. --pcap-drops FILE writes dropped
// frames to a pcap file, rate-limited.
func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("c", "/etc/fastnat/fastnat.toml", "configuration `file`")
	verbose := fs.Bool("v", false, "log debug messages")
	pcapDrops := fs.String("pcap-drops", "", "write dropped frames to pcap `FILE` (at most 100 per second)")
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
	// Signals are caught before anything starts: a SIGHUP while starting
	// must not kill the daemon; it is handled once the daemon runs.
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sig)
	d, err := dataplane.Start(*file, cfg, dataplane.DaemonOptions{Log: log, PcapDrops: *pcapDrops})
	if err != nil {
		log.Error("start failed", "err", err)
		return exitFailure
	}
	for s := range sig {
		if s != syscall.SIGHUP {
			log.Info("stopping", "signal", s.String())
			break
		}
		_, _ = d.Reload() // logs the outcome
	}
	err = d.Close()
	if err != nil {
		log.Error("stop", "err", errors.Unwrap(err))
		return exitFailure
	}
	return exitOK
}
