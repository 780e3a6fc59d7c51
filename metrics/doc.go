// Package metrics exports a running fastnat's counters to Prometheus and
// defines the Snapshot that `fastnat show stats` prints.
//
// Nothing here runs per packet. Workers keep their counters as plain
// integers and publish them once per burst (pipeline.Counters); the flow
// table, the NAT's port pools and the FTP ALG keep their own. A Collector
// is handed a function that gathers all of that into one Snapshot, and
// calls it once per scrape: the numbers a scrape reports and the numbers
// `fastnat show stats` prints come from the same code. The Snapshot helpers
// (WorkerSnapshot, TableSnapshot, CountSessions, ...) convert each source;
// package dataplane wires them together.
//
// Sessions by protocol and application are not counted anywhere on the
// fast path, so CountSessions walks the flow table (flowtable.Range) at
// scrape time: a sequential read of the session array, 13 ms for a table of
// 1M slots holding 100k sessions on the development machine
// (BenchmarkCountSessions), acceptable once per scrape. Every metric
// name starts with fastnat_; the labels are worker and queue (together),
// interface, reason, protocol, app, address, result, and the build's
// version, revision and goversion on fastnat_build_info.
//
// deploy/prometheus/fastnat-alerts.yml and deploy/grafana/fastnat.json
// are written against these names; deploy_test.go runs promtool test rules
// on the alerts and checks that every name the rules and the dashboard
// query is one the Collector describes.
//
// Serve runs the /metrics endpoint on its own net/http server; Close stops
// it.
package metrics
