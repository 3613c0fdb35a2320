package scripted

import (
	"testing"
	"time"
)

// TestNoiseMeterLate: Late is the lateness of the wake-ups that were
// due before the span's end and came after its start, and of the sleep
// in progress when it is overdue; the meter keeps the newest wake-ups.
func TestNoiseMeterLate(t *testing.T) {
	t0 := time.Now().Add(-time.Hour)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	m := &NoiseMeter{}
	m.keep(wakeUp{due: at(10), woke: at(15)}) // 5 ms late
	m.keep(wakeUp{due: at(50), woke: at(52)}) // 2 ms late
	tests := []struct {
		name     string
		from, to int
		want     time.Duration
	}{
		{"before any", 0, 5, 0},
		{"the first", 0, 20, 5 * time.Millisecond},
		{"inside the first", 12, 13, 5 * time.Millisecond},
		{"after the first", 16, 60, 2 * time.Millisecond},
		{"both", 0, 60, 5 * time.Millisecond},
		{"after both", 53, 90, 0},
	}
	for _, tt := range tests {
		if got := m.Late(at(tt.from), at(tt.to)); got != tt.want {
			t.Errorf("%s: Late(+%dms, +%dms) = %v, want %v", tt.name, tt.from, tt.to, got, tt.want)
		}
	}

	// A sleep overdue now counts up to now, for a span that ends after
	// it was due.
	m.asleep.Store(time.Now().Add(-20 * time.Millisecond).UnixNano())
	if got := m.Late(time.Now().Add(-time.Second), time.Now()); got < 20*time.Millisecond {
		t.Errorf("an overdue sleep: Late = %v, want at least 20ms", got)
	}
	if got := m.Late(at(0), at(60)); got != 5*time.Millisecond {
		t.Errorf("an overdue sleep after the span: Late = %v, want the span's 5ms", got)
	}
	m.asleep.Store(0)

	// The newest half is kept when full.
	for i := range noiseKeep - len(m.late) {
		m.keep(wakeUp{due: at(100 + i), woke: at(101 + i)})
	}
	if len(m.late) != noiseKeep {
		t.Fatalf("%d wake-ups kept, want %d", len(m.late), noiseKeep)
	}
	last := wakeUp{due: at(200000), woke: at(200003)}
	m.keep(last)
	if len(m.late) != noiseKeep/2+1 || m.late[len(m.late)-1] != last {
		t.Errorf("full: %d kept, the last %v; want %d, the newest last", len(m.late), m.late[len(m.late)-1], noiseKeep/2+1)
	}
	if got := m.Late(at(0), at(60)); got != 0 {
		t.Errorf("Late of a span whose wake-ups were let go = %v, want 0", got)
	}
}

// TestNoiseMeterMeasures: the meter's thread keeps the wake-ups that
// came late, and Late finds them: a sleep that lasts 6 ms where 1 ms was
// asked is a thread woken at least 5 ms late, whatever the machine does.
func TestNoiseMeterMeasures(t *testing.T) {
	m := &NoiseMeter{stop: make(chan struct{}), done: make(chan struct{}),
		sleep: func() { time.Sleep(noisePeriod + 5*time.Millisecond) }}
	begin := time.Now()
	go m.run()
	time.Sleep(30 * time.Millisecond)
	m.Stop()
	if got := m.Late(begin, time.Now()); got < 5*time.Millisecond {
		t.Errorf("Late over sleeps 5 ms too long = %v, want at least 5ms", got)
	}
	if len(m.late) == 0 {
		t.Errorf("no late wake-up kept")
	}
}
