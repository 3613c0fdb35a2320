//go:build race

package main

// raceEnabled says whether the test binary was built with -race.
const raceEnabled = true
