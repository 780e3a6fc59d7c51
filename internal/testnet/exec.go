package testnet

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long Stop waits after SIGTERM before it sends SIGKILL.
const stopGrace = 3 * time.Second

// Command returns a command that runs name with args inside network
// namespace ns (`ip netns exec ns name args...`). The command runs in its own
// process group; cancelling ctx kills the whole group, so helpers it forks
// die with it.
func Command(ctx context.Context, ns, name string, args ...string) *exec.Cmd {
	argv := append([]string{"netns", "exec", ns, ToolPath(name)}, args...)
	cmd := exec.CommandContext(ctx, ToolPath("ip"), argv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// ExecError is a command that failed; its message carries the end of the
// command's standard error so a test log shows why.
type ExecError struct {
	Args   []string // the command line, starting with "ip netns exec NS"
	Stderr string   // the command's standard error (last 4 KiB)
	Err    error    // from exec: usually an *exec.ExitError
}

func (e *ExecError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		return fmt.Sprintf("%s: %v", strings.Join(e.Args, " "), e.Err)
	}
	return fmt.Sprintf("%s: %v: %s", strings.Join(e.Args, " "), e.Err, msg)
}

func (e *ExecError) Unwrap() error { return e.Err }

// Run runs name with args inside namespace ns, waits for it and returns its
// standard output. A failure returns an *ExecError holding standard error.
func Run(ctx context.Context, ns, name string, args ...string) ([]byte, error) {
	if ns == "" {
		return nil, fmt.Errorf("run %s: empty namespace name", name)
	}
	cmd := Command(ctx, ns, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), &ExecError{Args: cmd.Args, Stderr: tail(stderr.String(), 4096), Err: err}
	}
	return stdout.Bytes(), nil
}

// runHost runs a command in the caller's own namespace: `ip` subcommands
// that name their target namespace themselves, and tools that only read
// files (tshark over a capture).
func runHost(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, ToolPath(name), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), &ExecError{Args: cmd.Args, Stderr: tail(stderr.String(), 4096), Err: err}
	}
	return stdout.Bytes(), nil
}

// Process is a long-running command started in a namespace by Start. Its
// standard output and error are kept (the last 64 KiB) for diagnosis.
type Process struct {
	Name string // a label for logs, such as "vsftpd"
	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{}
	err  error // set before done is closed

	stopOnce sync.Once
	stopErr  error
}

// Start starts name with args in namespace ns and returns at once. The
// process runs in its own process group and is killed if the starting
// program dies (Pdeathsig; the kernel ties it to the starting OS thread,
// so do not call Start from inside Do, whose thread may be discarded);
// stop it with Stop.
func Start(ns, name string, args ...string) (*Process, error) {
	if ns == "" {
		return nil, fmt.Errorf("start %s: empty namespace name", name)
	}
	argv := append([]string{"netns", "exec", ns, ToolPath(name)}, args...)
	cmd := exec.Command(ToolPath("ip"), argv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out := &tailBuffer{max: 64 << 10}
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s in %s: %w", name, ns, err)
	}
	p := &Process{Name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id (of `ip netns exec`, which execs the command, so it
// is the command's own pid).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and with what error.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Output returns the end of the process's combined standard output and
// error.
func (p *Process) Output() string { return p.out.String() }

// Stop sends SIGTERM to the process group, waits up to a few seconds, then
// sends SIGKILL. It returns nil when the process ended because of the
// signal; calling it again returns the first result.
func (p *Process) Stop() error {
	p.stopOnce.Do(func() {
		select {
		case <-p.done:
			// Exited on its own before Stop: report how.
			if p.err != nil {
				p.stopErr = fmt.Errorf("%s exited early: %w: %s", p.Name, p.err, tail(p.Output(), 1024))
			}
			return
		default:
		}
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopGrace):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	})
	return p.stopErr
}

// sbinDirs are searched after PATH: the harness's tools (ip, vsftpd,
// nft, sysctl, ethtool) live in sbin directories that a non-login
// environment's PATH may leave out, and the FTP servers Debian will not
// install beside vsftpd (proftpd, pure-ftpd) where scripts/setup.sh
// unpacks them.
var sbinDirs = []string{"/usr/sbin", "/sbin", "/usr/local/sbin",
	"/opt/fastnat-test/proftpd-core/usr/sbin", "/opt/fastnat-test/pure-ftpd/usr/sbin"}

// ToolPath returns the absolute path of program name, searching PATH and
// then the sbin directories; name itself if it is found nowhere (running
// it then fails with a clear error).
func ToolPath(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
		return p
	}
	if strings.ContainsRune(name, '/') {
		return name
	}
	for _, d := range sbinDirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return name
}

// tailBuffer is an io.Writer that keeps the last max bytes written.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
