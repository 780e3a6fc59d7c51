package config

// WorkerQueues returns the queue each worker serves, given n, the number
// of receive queues of the first interface: that interface's queues list
// (or 0..n-1 for "all"), cut to [dataplane] workers when it asks for
// fewer. asked is the workers count the file asks for (0 for one per
// queue); when it is more than the queues allow, the daemon runs
// len(queues) workers and says so, and `fastnat doctor` warns.
func (c *Config) WorkerQueues(n int) (queues []int, asked int) {
	queues = c.Interfaces[0].Queues
	if queues == nil {
		for q := range n {
			queues = append(queues, q)
		}
	}
	asked = c.Dataplane.Workers
	if asked > 0 && asked < len(queues) {
		queues = queues[:asked]
	}
	return queues, asked
}
