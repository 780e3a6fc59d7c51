package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/fastnat/fastnat/doctor"
	"github.com/fastnat/fastnat/internal/cli"
)

var doctorCommand = &cli.Command{
	Name:    "doctor",
	Summary: "check this host for running the configuration file, each finding with its fix (root, read-only)",
	About: "Checks, for every configured interface: receive queues against [dataplane] workers, RSS hashing " +
		"UDP by ports, the MTU against frame_size, LRO/GRO/VLAN offloads, native XDP and AF_XDP zero copy " +
		"as the driver reports them (and mlx5's separate zero-copy queues before Linux 6.1), another XDP " +
		"program attached, transmit checksum offload on the peer of a veth, each worker queue's interrupt " +
		"pinned to one CPU, the NIC's NUMA node against the workers' CPUs; and for the host: irqbalance, " +
		"[dataplane] cpus, the locked-memory limit for the UMEM, and whether the installed fastnat.service's " +
		"IP address filter (IPAddressDeny=, IPAddressAllow=, with its drop-ins) lets the event log reach " +
		"every collector and Prometheus the metrics endpoint.\n\n" +
		"It only reads (/sys, /proc, ethtool and ip in their reporting forms) and changes nothing. Each " +
		"finding is ok, info, warn or FAIL, with the command that fixes it. Exit 0 when nothing failed, 1 " +
		"when a check failed, 2 for an invalid file.",
	Flags: func(fs *flag.FlagSet) cli.Run {
		file := fs.String("c", defaultConfig, "configuration `FILE` to check the host for")
		asJSON := fs.Bool("json", false, "print the findings as JSON")
		return func(args []string, stdout, stderr io.Writer) int {
			cfg, ok := loadConfig("doctor", *file, stderr)
			if !ok {
				return exitUsage
			}
			r := doctor.Examine(cfg, doctor.Local())
			if *asJSON {
				if err := r.WriteJSON(stdout); err != nil {
					fmt.Fprintf(stderr, "fastnat doctor: %v\n", err)
					return exitFailure
				}
			} else {
				r.WriteText(stdout)
			}
			if r.Worst() == doctor.Fail {
				return exitFailure
			}
			return exitOK
		}
	},
}
