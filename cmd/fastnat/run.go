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
	"github.com/fastnat/fastnat/internal/cli"
)

var runCommand = &cli.Command{
	Name:    "run",
	Summary: "run the dataplane with the configuration file (root)",
	About: "Attaches fastnat's XDP program to every configured interface, opens one AF_XDP socket per " +
		"interface and queue, and runs one worker per queue until SIGTERM or SIGINT, which detach the " +
		"programs first (traffic falls back to the kernel) and exit 0. SIGHUP, `systemctl reload` or " +
		"`fastnat reload` re-read the file, all or nothing: a file with errors is refused and the running " +
		"configuration kept.\n\n" +
		"It logs (to stderr) one line per interface and queue served with the XDP mode the kernel took, " +
		"and each worker's totals when it stops. While it runs, [metrics] listen serves Prometheus metrics " +
		"and [control] socket answers `fastnat show` and `fastnat reload`.",
	Flags: func(fs *flag.FlagSet) cli.Run {
		file := fs.String("c", defaultConfig, "configuration `FILE`")
		verbose := fs.Bool("v", false, "log debug messages")
		pcapDrops := fs.String("pcap-drops", "", "write dropped frames to pcap `FILE` (at most 100 per second)")
		return func(args []string, stdout, stderr io.Writer) int {
			return runDaemon(*file, *verbose, *pcapDrops, stderr)
		}
	},
}

// runDaemon is `fastnat run`: the daemon until SIGTERM or SIGINT.
func runDaemon(file string, verbose bool, pcapDrops string, stderr io.Writer) int {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg, err := config.Load(file)
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
	d, err := dataplane.Start(file, cfg, dataplane.DaemonOptions{Log: log, PcapDrops: pcapDrops})
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
	if err := d.Close(); err != nil {
		log.Error("stop", "err", errors.Unwrap(err))
		return exitFailure
	}
	return exitOK
}
