package report

// Decisions are the limiter's decisions per tenth of a window over one algorithm's
// whole run, by the decisions' server time (client receive time with --target).
type Decisions struct {
	// BucketMs is an interval's length, W/10.
	BucketMs float64 `json:"bucket_ms"`
	// Allowed and Denied count the decisions in each interval from the run's start
	// (a window edge) on.
	Allowed []int64 `json:"allowed"`
	Denied  []int64 `json:"denied"`
}
