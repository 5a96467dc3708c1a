package algorithms

// SetBatchHooks makes l's batcher call queued after each check queues and sent with
// each batch's size before it is sent. Call it before l's first check.
func SetBatchHooks(l *Redis, queued func(), sent func(n int)) {
	l.batch.onQueue, l.batch.onSend = queued, sent
}

// QueuedChecks is how many calls l's batch queue holds, those given up included.
func QueuedChecks(l *Redis) int {
	l.batch.mu.Lock()
	defer l.batch.mu.Unlock()
	return len(l.batch.queue)
}

// PipelinedBatches makes a batching limiter send each batch as a pipeline of script
// calls, as on a cluster, instead of one call of the batch script.
func PipelinedBatches() Option {
	return func(o *options) { o.batchPipelined = true }
}

// BatchScriptSHA is the SHA-1 of the script that decides a standalone batch.
func BatchScriptSHA() string { return batchScript.Hash() }
