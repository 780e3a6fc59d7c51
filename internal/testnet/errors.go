package testnet

import "errors"

// Sentinel errors; the errors returned by this package wrap them so callers
// can test with errors.Is.
var (
	// ErrNotRoot means the caller lacks the privileges to create network
	// namespaces.
	ErrNotRoot = errors.New("testnet needs root")
	// ErrMissingTool means a command the harness runs is not installed.
	ErrMissingTool = errors.New("required tool not installed")
	// ErrModeUnsupported means an FTP client cannot be made to use the
	// requested data-connection mode (lftp sends EPRT only over IPv6).
	ErrModeUnsupported = errors.New("ftp client cannot use this mode")
	// ErrModeNotUsed means a transfer did not use the data-connection
	// command it was asked to use (for example the client fell back from
	// EPSV to PASV), so it does not prove what it was meant to.
	ErrModeNotUsed = errors.New("ftp client did not use the requested mode")
	// ErrChecksum means a transferred file's sha256 differs from the
	// expected one.
	ErrChecksum = errors.New("sha256 mismatch")
	// ErrClosed means the topology was already closed.
	ErrClosed = errors.New("topology closed")
)
