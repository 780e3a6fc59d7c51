package doctor

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/fastnat/fastnat/afxdp"
)

// System is the host as the checks see it.
type System struct {
	// Run runs a command that only reports and returns its standard
	// output; an error carries its standard error.
	Run func(name string, args ...string) (string, error)
	// ReadFile, ReadDir (names only) and EvalSymlinks read the file
	// system.
	ReadFile     func(path string) ([]byte, error)
	ReadDir      func(path string) ([]string, error)
	EvalSymlinks func(path string) (string, error)
	// XDPFeatures reports a driver's XDP features (afxdp.XDPFeatures).
	XDPFeatures func(iface string) (afxdp.XDPFeatures, error)
	EUID        int
	NumCPU      int
}

// commandTimeout bounds one command.
const commandTimeout = 10 * time.Second

// Local is the machine the doctor runs on, in its network namespace.
func Local() System {
	return System{
		Run: func(name string, args ...string) (string, error) {
			ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
			defer cancel()
			var out, errOut bytes.Buffer
			cmd := exec.CommandContext(ctx, name, args...)
			cmd.Stdout, cmd.Stderr = &out, &errOut
			cmd.Env = append(os.Environ(), "LC_ALL=C")
			if err := cmd.Run(); err != nil {
				msg := strings.TrimSpace(errOut.String())
				if msg == "" {
					msg = err.Error()
				}
				return out.String(), fmt.Errorf("%s %s: %s", name, strings.Join(args, " "), msg)
			}
			return out.String(), nil
		},
		ReadFile: os.ReadFile,
		ReadDir: func(path string) ([]string, error) {
			es, err := os.ReadDir(path)
			names := make([]string, len(es))
			for i, e := range es {
				names[i] = e.Name()
			}
			return names, err
		},
		EvalSymlinks: filepath.EvalSymlinks,
		XDPFeatures:  afxdp.DeviceXDPFeatures,
		EUID:         os.Geteuid(),
		NumCPU:       runtime.NumCPU(),
	}
}
