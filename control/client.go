package control

import (
	"context"
	"encoding/json"
	"fmt"
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
