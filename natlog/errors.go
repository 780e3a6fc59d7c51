package natlog

import "errors"

// Sentinel errors.
var (
	// ErrConfig is wrapped by errors about a bad ring size, producer
	// count or sink.
	ErrConfig = errors.New("invalid event log configuration")
	// ErrUnknownType is wrapped by ParseType's error.
	ErrUnknownType = errors.New("unknown event type")
	// ErrClosed is returned by a Subscription whose Hub or itself was
	// closed, once every queued event has been read.
	ErrClosed = errors.New("event subscription closed")
	// ErrTooMany refuses a subscription beyond MaxSubscriptions.
	ErrTooMany = errors.New("too many event subscriptions")
)
