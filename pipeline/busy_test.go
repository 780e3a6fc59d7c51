package pipeline

import (
	"testing"
	"time"
)

// TestBusyMeter: only polls that received frames count as busy; empty
// polls and the time between them do not.
func TestBusyMeter(t *testing.T) {
	var m busyMeter
	m.start()
	time.Sleep(5 * time.Millisecond)
	m.mark(false) // an empty poll that took 5 ms: idle
	for range 1000 {
		m.mark(false)
	}
	m.publish()
	if b := m.pub.Load(); b != 0 {
		t.Fatalf("empty polls counted as %v busy", time.Duration(b))
	}
	if n := m.beats.Load(); n < 1000/busyPublish {
		t.Fatalf("%d beats over 1000 empty polls, want one every %d", n, busyPublish)
	}
	m.polls = 0
	time.Sleep(3 * time.Millisecond)
	m.mark(true) // a poll that received frames and took 3 ms
	if m.pub.Load() != 0 {
		t.Fatal("published before busyPublish polls")
	}
	m.publish()
	if b := time.Duration(m.pub.Load()); b < 3*time.Millisecond {
		t.Fatalf("busy %v after a 3 ms busy poll", b)
	}
	for range busyPublish - 1 { // the 64th busy poll publishes
		m.mark(true)
	}
	if m.local != 0 {
		t.Errorf("%v not published after %d busy polls", m.local, busyPublish)
	}
}
