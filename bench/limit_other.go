//go:build !unix

package main

// maxStreams is how many streams one proxy can hold: where there is no
// open-file limit to ask, a thousand.
func maxStreams() int { return 1000 }
