package bench_test

import (
	"flag"
	"fmt"

	"github.com/fastnat/fastnat/bench"
)

// The flags of `fastnat bench veth`. The command then runs
//
//	cfg.FastnatBinary, cfg.Progress = executable, os.Stderr
//	rep, err := bench.RunVeth(ctx, *cfg)
//	err = rep.WriteAll(os.Stdout, cfg.JSON, cfg.Plot)
func ExampleVethFlags() {
	fs := flag.NewFlagSet("veth", flag.ContinueOnError)
	cfg := bench.VethFlags(fs)
	err := fs.Parse([]string{"--dut", "kernel,fastnat", "--flows", "1,64k", "--sizes", "64,1518", "--rounds", "3", "--json", "veth.json", "--plot", "veth.png"})
	fmt.Println(err, cfg.DUTs, cfg.Flows, cfg.Sizes, cfg.Rounds, cfg.Duration, cfg.JSON, cfg.Plot)
	// Output: <nil> [kernel fastnat] [1 65536] [64 1518] 3 5s veth.json veth.png
}
