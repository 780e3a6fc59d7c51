package flowtable

// InsertResult is the outcome of Insert or Expect. Every value but Inserted
// is a reason the insert was refused; each has a counter in Stats.
type InsertResult uint8

// Insert outcomes.
const (
	Inserted         InsertResult = iota // the session or expectation is in the table
	ErrFull                              // no free session slot (or no index room): existing sessions are unaffected
	ErrExists                            // a key is already present: the caller lost a creation race and looks up again
	ErrSameKey                           // Key[Orig] == Key[Reply]: the two directions would be indistinguishable
	ErrNoExpectSpace                     // the expectation store is full
	NumInsertResults                     // number of InsertResult values, for counter arrays
)

var insertResultNames = [NumInsertResults]string{
	Inserted:         "inserted",
	ErrFull:          "full",
	ErrExists:        "exists",
	ErrSameKey:       "same_key",
	ErrNoExpectSpace: "no_expect_space",
}

// String returns the snake_case name used for counters and logs.
func (r InsertResult) String() string {
	if r < NumInsertResults {
		return insertResultNames[r]
	}
	return "unknown"
}
