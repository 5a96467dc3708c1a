package algorithms

import (
	"errors"
	"fmt"
)

// DefaultMaxIdentities is how many identities a Local holds state for unless
// WithMaxIdentities says otherwise.
const DefaultMaxIdentities = 100_000

// ErrInvalidOption is wrapped by the error for an Option value out of range.
var ErrInvalidOption = errors.New("invalid option")

// Option tunes a limiter beyond its Policy. Options that do not apply to a kind of
// limiter are ignored by it.
type Option func(*options)

// options are the settings the Options make; the zero value is every default.
type options struct {
	maxIDs int
	err    error
}

// WithMaxIdentities bounds how many identities a Local holds state for (default
// DefaultMaxIdentities). When a new identity comes and the bound is reached, the
// identity used least recently is forgotten (see Local).
func WithMaxIdentities(n int) Option {
	return func(o *options) {
		if n < 1 {
			o.err = fmt.Errorf("%w: max identities is %d; it must be at least 1", ErrInvalidOption, n)
			return
		}
		o.maxIDs = n
	}
}

func applyOptions(opts []Option) (options, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
		if o.err != nil {
			return options{}, o.err
		}
	}
	return o, nil
}

// maxIdentities is the bound of a Local.
func (o options) maxIdentities() int {
	if o.maxIDs == 0 {
		return DefaultMaxIdentities
	}
	return o.maxIDs
}
