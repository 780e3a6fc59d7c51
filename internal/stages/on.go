//go:build fastnat_stages

package stages

import (
	"time"
)

// On reports whether the profile is compiled in (build tag fastnat_stages).
const On = true

var (
	cur     Stage
	last    uint64
	round   [NumStages]uint64
	nmarks  [NumStages]uint64
	total   [NumStages]uint64
	marks   [NumStages]uint64
	packets uint64
	rounds  uint64
	dropped uint64
	avg     float64 // moving average of accepted rounds' cycles
	overhd  float64 // cycles one Mark adds to an interval
	running bool
)

// Mark charges the cycles since the previous Mark to the running stage
// and starts stage s.
func Mark(s Stage) {
	t := ticks()
	if running {
		round[cur] += t - last
		nmarks[cur]++
	}
	cur, last = s, ticks()
}

// EndRound closes a round that carried packets frames: its stages are
// added to the profile unless the round was preempted (more than four
// times the moving average of the rounds before it).
func EndRound(n int) {
	Mark(Other)
	if !running {
		return
	}
	var sum uint64
	for _, c := range round {
		sum += c
	}
	if n > 0 {
		if avg == 0 || float64(sum) < 4*avg {
			for i := range round {
				total[i] += round[i]
				marks[i] += nmarks[i]
			}
			packets += uint64(n)
			rounds++
			if avg == 0 {
				avg = float64(sum)
			}
			avg = 0.99*avg + 0.01*float64(sum)
		} else {
			dropped++
		}
	}
	round, nmarks = [NumStages]uint64{}, [NumStages]uint64{}
}

// Start clears the profile and starts recording.
func Start() {
	total, marks, round, nmarks = [NumStages]uint64{}, [NumStages]uint64{}, [NumStages]uint64{}, [NumStages]uint64{}
	packets, rounds, dropped, avg = 0, 0, 0, 0
	overhd = calibrate()
	running = true
	cur, last = Other, ticks()
}

// Profile is a recorded profile.
type Profile struct {
	NsPerPacket [NumStages]float64 // per stage, the Marks' own cost subtracted
	Packets     uint64
	Rounds      uint64 // rounds kept
	Dropped     uint64 // rounds discarded as preempted
}

// Stop ends recording and returns the profile.
func Stop() Profile {
	running = false
	ns := tickNanos()
	p := Profile{Packets: packets, Rounds: rounds, Dropped: dropped}
	if packets == 0 {
		return p
	}
	for i := range total {
		c := float64(total[i]) - overhd*float64(marks[i])
		p.NsPerPacket[i] = max(c, 0) * ns / float64(packets)
	}
	return p
}

// calibrate returns the cycles a Mark adds to an interval: the smallest
// of many back-to-back pairs.
func calibrate() float64 {
	best := ^uint64(0)
	for range 10000 {
		a := ticks()
		b := ticks()
		best = min(best, b-a)
	}
	return float64(best)
}

// tickNanos returns nanoseconds per tick, measured against the monotonic
// clock over 20 ms.
func tickNanos() float64 {
	t0, c0 := time.Now(), ticks()
	time.Sleep(20 * time.Millisecond)
	t1, c1 := time.Now(), ticks()
	return float64(t1.Sub(t0).Nanoseconds()) / float64(c1-c0)
}
