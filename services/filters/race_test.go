//go:build race

package filters_test

// raceEnabled says the test binary runs under the race detector.
const raceEnabled = true
