package commands

import "bytes"

// TestIO returns an IO on buffers, off a terminal, and its buffers: what to write
// standard input with, and what the command wrote to its output and error streams.
// It is for tests, in ratelab's packages and in the tests of code built on them.
func TestIO() (ios IO, in, out, errOut *bytes.Buffer) {
	in, out, errOut = &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return IO{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}
