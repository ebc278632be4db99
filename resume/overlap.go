package resume

import "unicode/utf8"

// minOverlap is the shortest repeat worth dropping: a shorter match (a
// space, a "the") is as likely a coincidence as a repetition.
const minOverlap = 8

// overlapWindow is how much of a continuation is held back to look for a
// repeat of what the client already has.
const overlapWindow = 256

// overlap returns how many leading bytes of next repeat the end of sent:
// the longest k >= minOverlap such that next[:k] == sent[len(sent)-k:],
// cut on a character boundary; 0 if none.
func overlap(sent, next string) int {
	limit := min(len(sent), len(next))
	for k := limit; k >= minOverlap; k-- {
		if next[:k] == sent[len(sent)-k:] && (k == len(next) || utf8.RuneStart(next[k])) {
			return k
		}
	}
	return 0
}
