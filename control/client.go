package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
)

// Call sends req to the daemon listening on socket and returns its
// response. A request the daemon refused returns the response and an
// *Error; ctx bounds the whole exchange.
func Call(ctx context.Context, socket string, req Request) (*Response, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, fmt.Errorf("connect to control socket: %w (is fastnat running?)", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := json.NewEncoder(c).Encode(&req); err != nil {
		return nil, fmt.Errorf("send request: %w", err)
	}
	if uc, ok := c.(*net.UnixConn); ok {
		_ = uc.CloseWrite()
	}
	var resp Response
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("read response: %w", ctx.Err())
		}
		return nil, fmt.Errorf("read response: %w", err)
	}
	if resp.Code != "" {
		return &resp, &Error{Code: resp.Code, Msg: resp.Error}
	}
	return &resp, nil
}

// ErrStreamEnded is returned by Stream when the daemon ended the stream
// (it stopped, or its event log closed).
var ErrStreamEnded = errors.New("the daemon ended the event stream")

// Stream asks the daemon on socket for the events filter selects and
// calls f with each, in order, until ctx ends (Stream then returns nil),
// f returns an error (returned), or the daemon ends the stream
// (ErrStreamEnded). An Event of type TypeLost says how many events the
// stream lost because this client read too slowly. A request the daemon
// refused returns an *Error.
func Stream(ctx context.Context, socket string, filter EventFilter, f func(*Event) error) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return fmt.Errorf("connect to control socket: %w (is fastnat running?)", err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	// The write side stays open: closing it tells the daemon to stop.
	if err := json.NewEncoder(c).Encode(&Request{Cmd: CmdEvents, Events: &filter}); err != nil {
		return fmt.Errorf("send request: %w", err)
	}
	dec := json.NewDecoder(bufio.NewReader(c))
	var resp Response
	if err := dec.Decode(&resp); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, io.EOF) {
			// The daemon subscribed us and stopped before its stream's
			// first line: the stream ended before it began.
			return ErrStreamEnded
		}
		return fmt.Errorf("read response: %w", err)
	}
	if resp.Code != "" {
		return &Error{Code: resp.Code, Msg: resp.Error}
	}
	if !resp.Stream {
		return fmt.Errorf("read response: the daemon did not start a stream")
	}
	for {
		var e Event
		if err := dec.Decode(&e); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, io.EOF) {
				return ErrStreamEnded
			}
			return fmt.Errorf("read event: %w", err)
		}
		if err := f(&e); err != nil {
			return err
		}
	}
}
