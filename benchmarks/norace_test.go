//go:build !race

package benchmarks

// raceEnabled tells the tests they run under the race detector, which
// slows every goroutine several times over.
const raceEnabled = false
