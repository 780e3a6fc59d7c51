package config_test

import (
	"testing"

	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/flowtable"
)

// The flow table has an aging cursor and a grace-period reader slot for
// every worker the configuration allows; a config accepted here must not
// fail in flowtable.Expire or Enter at run time.
func TestWorkerLimitMatchesFlowTable(t *testing.T) {
	if config.MaxWorkers > flowtable.MaxWorkers {
		t.Fatalf("config allows %d workers, the flow table %d", config.MaxWorkers, flowtable.MaxWorkers)
	}
}
