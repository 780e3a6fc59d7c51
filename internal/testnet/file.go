package testnet

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
)

// WriteRandomFile writes size pseudo-random bytes (ChaCha8 seeded by seed,
// so the same seed gives the same file) to path with mode 0644 and returns
// their sha256 in hex.
func WriteRandomFile(path string, size int64, seed uint64) (string, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return "", fmt.Errorf("write random file: %w", err)
	}
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	src := rand.NewChaCha8(key)
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<16)
	if _, err := io.CopyN(w, src, size); err != nil {
		f.Close()
		return "", fmt.Errorf("write random file %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return "", fmt.Errorf("write random file %s: %w", path, err)
	}
	// The mode asked of OpenFile is masked by the umask; FTP servers
	// serve only world-readable files to anonymous users.
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return "", fmt.Errorf("write random file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write random file %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// FileSHA256 returns the sha256 of the file at path in hex, and its size.
func FileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("sha256: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("sha256 %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
