// Command ratelab is a laboratory and load tester for Redis-backed rate limiting and caching.
package main

import (
	"os"

	"github.com/ratelab/ratelab/cmd"
)

func main() { os.Exit(cmd.Main()) }
