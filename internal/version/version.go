// Package version tells which fastnat this is, from the build itself: a
// release sets Version at link time
//
//	go build -ldflags "-X github.com/fastnat/fastnat/internal/version.Version=v1.2.3" ./cmd/fastnat
//
// and any other build reports what the Go toolchain stamped into the
// binary (runtime/debug.ReadBuildInfo): the main module's version, which
// Go derives from the repository's tag or, between tags, a pseudo-version
// with the commit (v0.0.0-20250131120000-abcdef123456, "+dirty" for
// uncommitted changes), and the VCS revision, commit time and modified
// flag. `fastnat version`, the man page's date and the
// fastnat_build_info metric read it.
package version

import (
	"regexp"
	"runtime/debug"
	"strings"
)

// Version is set by the linker for releases; empty otherwise.
var Version = ""

// Info is what the build says about itself.
type Info struct {
	Version  string // "v1.2.3", a pseudo-version, or "devel"
	Revision string // VCS commit, "" if unknown
	Time     string // commit time, RFC 3339, "" if unknown
	Modified bool   // built with uncommitted changes
	Go       string // toolchain: "go1.26.8"
}

// Get reads the build's information.
func Get() Info {
	info := Info{Version: "devel"}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		info.Go = bi.GoVersion
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			info.Version = v
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Revision = s.Value
			case "vcs.time":
				info.Time = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
	}
	if Version != "" {
		info.Version = Version
	}
	return info
}

// pseudo matches the timestamp of a Go pseudo-version
// (v0.0.0-20250131120000-abcdef123456, v1.3.0-rc.1.0.20250131120000-...).
var pseudo = regexp.MustCompile(`[-.](\d{4})(\d{2})(\d{2})\d{6}-[0-9a-f]{12}(\+dirty)?$`)

// Date is the commit's date (YYYY-MM-DD): from the VCS, else from a
// pseudo-version; "" if unknown.
func (i Info) Date() string {
	if len(i.Time) >= 10 {
		return i.Time[:10]
	}
	if m := pseudo.FindStringSubmatch(i.Version); m != nil {
		return m[1] + "-" + m[2] + "-" + m[3]
	}
	return ""
}

// Short is the revision's first 12 characters.
func (i Info) Short() string {
	if len(i.Revision) > 12 {
		return i.Revision[:12]
	}
	return i.Revision
}

// String is the one line `fastnat version` prints after the name:
// "v1.2.3 (abcdef123456 2025-01-31, modified) go1.26.8".
func (i Info) String() string {
	var extra []string
	if i.Revision != "" && !strings.Contains(i.Version, i.Short()) {
		extra = append(extra, i.Short())
	}
	if d := i.Date(); d != "" {
		extra = append(extra, d)
	}
	s := i.Version
	if len(extra) > 0 {
		s += " (" + strings.Join(extra, " ")
		if i.Modified && !strings.HasSuffix(i.Version, "+dirty") {
			s += ", modified"
		}
		s += ")"
	}
	if i.Go != "" {
		s += " " + i.Go
	}
	return s
}
