package packet

import "testing"

func TestWindowScale(t *testing.T) {
	// A 20-byte header followed by options (padded by the caller).
	seg := func(opts ...byte) TCP {
		for len(opts)%4 != 0 {
			opts = append(opts, 0)
		}
		h := make([]byte, TCPMinLen, TCPMinLen+len(opts))
		h[tcpDataOff] = byte((TCPMinLen+len(opts))/4) << 4
		return append(h, opts...)
	}
	cases := []struct {
		name  string
		tcp   TCP
		shift uint8
		ok    bool
	}{
		{"none", seg(), 0, false},
		{"alone", seg(3, 3, 7), 7, true},
		{"linux SYN", seg(2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 9), 9, true},
		{"after nops", seg(1, 1, 1, 3, 3, 0), 0, true},
		{"above 14", seg(3, 3, 15), 14, true},
		{"after end of list", seg(0, 3, 3, 7), 0, false},
		{"bad length", seg(3, 4, 7, 0), 0, false},
		{"truncated", seg(1, 1, 1, 3), 0, false},
		{"zero-length option", seg(8, 0, 3, 3, 7), 0, false},
		{"option past the header", seg(2, 40), 0, false},
	}
	for _, c := range cases {
		if shift, ok := c.tcp.WindowScale(); shift != c.shift || ok != c.ok {
			t.Errorf("%s: WindowScale = %d %v, want %d %v", c.name, shift, ok, c.shift, c.ok)
		}
	}
}
