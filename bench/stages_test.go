//go:build fastnat_stages

package bench

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/stages"
	"github.com/fastnat/fastnat/packet"
)

// TestStageProfile prints the worker's per-stage cost in ns per packet
// (internal/stages: the poll loop timed at every stage boundary) for the
// in-memory pipeline, the median of several runs and their spread:
//
//	go test -tags fastnat_stages ./bench -run TestStageProfile -v
//
// FASTNAT_STAGE_FLOWS (default 1,1048576), FASTNAT_STAGE_PACKETS (per
// run, default 3000000) and FASTNAT_STAGE_RUNS (default 5) change it.
func TestStageProfile(t *testing.T) {
	flows := []int{1, 1 << 20}
	if v := os.Getenv("FASTNAT_STAGE_FLOWS"); v != "" {
		flows = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(f)
			if err != nil {
				t.Fatal(err)
			}
			flows = append(flows, n)
		}
	}
	packets, runs := envInt(t, "FASTNAT_STAGE_PACKETS", 3_000_000), envInt(t, "FASTNAT_STAGE_RUNS", 5)
	cols := make([][stages.NumStages + 1][]float64, len(flows))
	for c, n := range flows {
		r, err := NewPipelineRig(PipelineConfig{Flows: n})
		if err != nil {
			t.Fatal(err)
		}
		r.Run(packets / 3)
		for range runs {
			stages.Start()
			r.Run(packets)
			p := stages.Stop()
			var sum float64
			for s, v := range p.NsPerPacket {
				cols[c][s] = append(cols[c][s], v)
				sum += v
			}
			cols[c][stages.NumStages] = append(cols[c][stages.NumStages], sum)
			t.Logf("flows %d: %d packets, %d rounds kept, %d dropped as preempted, %.1f ns/pkt", n, p.Packets, p.Rounds, p.Dropped, sum)
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n| stage |")
	for _, n := range flows {
		fmt.Fprintf(&sb, " %d flows |", n)
	}
	fmt.Fprintf(&sb, "\n|---|")
	for range flows {
		fmt.Fprintf(&sb, "---:|")
	}
	for s := range stages.NumStages + 1 {
		name := "total"
		if s < stages.NumStages {
			name = stages.Stage(s).String()
		}
		fmt.Fprintf(&sb, "\n| %s |", name)
		for c := range flows {
			v := slices.Clone(cols[c][s])
			slices.Sort(v)
			fmt.Fprintf(&sb, " %.1f (%.1f–%.1f) |", v[len(v)/2], v[0], v[len(v)-1])
		}
	}
	t.Log(sb.String())
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return n
}

// TestLookupStageProfile prints LookupBatch's steps in ns per key over a
// full table of FASTNAT_STAGE_SESSIONS (default 1048576,10000000)
// sessions, random present keys in batches of 64:
//
//	go test -tags fastnat_stages ./bench -run TestLookupStageProfile -v
func TestLookupStageProfile(t *testing.T) {
	sizes := []int{1 << 20, 10_000_000}
	if v := os.Getenv("FASTNAT_STAGE_SESSIONS"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(f)
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		tb, err := flowtable.New(flowtable.Config{MaxSessions: n})
		if err != nil {
			t.Fatal(err)
		}
		prefill(n, func(lo, hi int) {
			var s flowtable.Session
			for j := lo; j < hi; j++ {
				s.Key = [2]packet.Tuple{benchOrigKey(uint64(j)), benchReplyKey(uint64(j))}
				tb.Insert(&s, 0, 3600, 0)
			}
		})
		var keys [64]packet.Tuple
		var out [64]flowtable.Hit
		r := rng{x: 0x9e3779b97f4a7c15}
		run := func(rounds int) {
			for range rounds {
				for i := range keys {
					keys[i] = benchKey(r.below(2 * uint64(n)))
				}
				stages.Mark(stages.Other)
				tb.LookupBatch(keys[:], out[:])
				stages.EndRound(len(keys))
			}
		}
		run(10000)
		stages.Start()
		run(50000)
		p := stages.Stop()
		var sb strings.Builder
		var sum float64
		for _, s := range []stages.Stage{stages.Hash, stages.BucketTouch, stages.SessionTouch, stages.FinalCheck} {
			fmt.Fprintf(&sb, " %s %.1f", s, p.NsPerPacket[s])
			sum += p.NsPerPacket[s]
		}
		m := tb.Memory()
		t.Logf("%d sessions (full table), ns/key:%s; LookupBatch %.1f (%d rounds dropped); %d MiB, %.0f%% on huge pages",
			n, sb.String(), sum, p.Dropped, m.Total()>>20, 100*float64(m.Huge)/float64(m.Hot+m.Cold+m.Index))
		tb.Close()
	}
}
