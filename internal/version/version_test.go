package version

import "testing"

func TestString(t *testing.T) {
	for _, tc := range []struct {
		in   Info
		want string
	}{
		{Info{Version: "devel", Go: "go1.26.8"}, "devel go1.26.8"},
		{Info{Version: "v1.2.3", Revision: "0123456789abcdef", Time: "2025-01-31T12:00:00Z", Go: "go1.26.8"}, "v1.2.3 (0123456789ab 2025-01-31) go1.26.8"},
		{Info{Version: "v0.0.0-20250131120000-0123456789ab", Revision: "0123456789abcdef", Time: "2025-01-31T12:00:00Z", Go: "go1.26.8"},
			"v0.0.0-20250131120000-0123456789ab (2025-01-31) go1.26.8"},
		{Info{Version: "devel", Revision: "0123456789abcdef", Time: "2025-01-31T12:00:00Z", Modified: true}, "devel (0123456789ab 2025-01-31, modified)"},
		{Info{Version: "v0.0.0-20250131120000-0123456789ab+dirty", Revision: "0123456789abcdef", Modified: true}, "v0.0.0-20250131120000-0123456789ab+dirty (2025-01-31)"},
	} {
		if got := tc.in.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDate(t *testing.T) {
	for in, want := range map[Info]string{
		{Time: "2025-01-31T12:00:00Z"}:                         "2025-01-31",
		{Version: "v0.0.0-20250131120000-0123456789ab"}:        "2025-01-31", // a pseudo-version carries it
		{Version: "v1.3.0-rc.1.0.20250131120000-0123456789ab"}: "2025-01-31",
		{Version: "v1.2.3"}:                                    "",
		{Version: "v0.0.0-2025013112-0123456789ab"}:            "",
	} {
		if got := in.Date(); got != want {
			t.Errorf("%+v: %q, want %q", in, got, want)
		}
	}
}
