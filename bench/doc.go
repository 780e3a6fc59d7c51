// Package bench holds fastnat's benchmark harness: the in-memory pipeline,
// the flow table against general-purpose concurrent maps, and end-to-end
// runs. Benchmarks keep the naive or standard baseline beside fastnat's
// own code so that every speed claim is a ratio measured in one run.
package bench
