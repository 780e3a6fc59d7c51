package afxdp

import (
	"errors"
	"testing"
)

func TestOptionsDefaults(t *testing.T) {
	tests := []struct {
		name    string
		in      Options
		want    Options
		wantErr error
	}{
		{"all defaults", Options{}, Options{FrameSize: 2048, FramesPerQueue: 8192, RingSize: 4096}, nil},
		{"more frames deepen the default ring", Options{FramesPerQueue: 16384}, Options{FrameSize: 2048, FramesPerQueue: 16384, RingSize: 8192}, nil},
		{"up to its bound", Options{FramesPerQueue: 65536}, Options{FrameSize: 2048, FramesPerQueue: 65536, RingSize: 8192}, nil},
		{"few frames shrink the default ring", Options{FramesPerQueue: 1024}, Options{FrameSize: 2048, FramesPerQueue: 1024, RingSize: 512}, nil},
		{"tiny", Options{FramesPerQueue: 40}, Options{FrameSize: 2048, FramesPerQueue: 40, RingSize: 32}, nil},
		{"explicit ring", Options{FrameSize: 4096, FramesPerQueue: 256, RingSize: 256}, Options{FrameSize: 4096, FramesPerQueue: 256, RingSize: 256}, nil},
		{"too few frames", Options{FramesPerQueue: 16}, Options{}, ErrInvalidOptions},
		{"odd frame size", Options{FrameSize: 3000}, Options{}, ErrInvalidOptions},
		{"ring not a power of two", Options{RingSize: 96}, Options{}, ErrInvalidOptions},
		{"ring too small", Options{RingSize: 16}, Options{}, ErrInvalidOptions},
		{"ring beyond the frames", Options{FramesPerQueue: 512, RingSize: 1024}, Options{}, ErrInvalidOptions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.withDefaults()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseMode(t *testing.T) {
	for _, m := range []Mode{ModeAuto, ModeNative, ModeGeneric} {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Fatalf("ParseMode(%q) = %v, %v", m.String(), got, err)
		}
	}
}
