package resume

import (
	"strings"
	"unicode"
)

// DefaultPrompts ask the model to continue where its answer stopped, in the
// language of the answer. "default" is the neutral one, for text whose
// language is not recognised (code, numbers, other languages).
var DefaultPrompts = map[string]string{
	"zh":      "请从你上一条回答中断的地方继续，直接接着写，不要重复已经写过的任何内容，也不要加任何开场白。",
	"en":      "Continue exactly where your previous answer stopped. Do not repeat anything you already wrote and do not add any preamble.",
	"ja":      "前の回答が途切れたところから正確に続けてください。すでに書いた内容を繰り返さず、前置きも付けないでください。",
	"ko":      "이전 답변이 끊긴 곳에서 정확히 이어서 계속 작성하세요. 이미 쓴 내용을 반복하지 말고 서두도 붙이지 마세요.",
	"es":      "Continúa exactamente donde se detuvo tu respuesta anterior. No repitas nada de lo que ya escribiste ni añadas ningún preámbulo.",
	"fr":      "Reprends exactement là où ta réponse précédente s'est arrêtée. Ne répète rien de ce que tu as déjà écrit et n'ajoute aucun préambule.",
	"de":      "Setze genau dort fort, wo deine vorherige Antwort abgebrochen ist. Wiederhole nichts, was du schon geschrieben hast, und schreibe keine Einleitung.",
	"ru":      "Продолжи ровно с того места, где оборвался твой предыдущий ответ. Не повторяй ничего из уже написанного и не добавляй вступления.",
	"default": "Continue exactly where your previous answer stopped, in the same language. Do not repeat anything you already wrote and do not add any preamble.",
}

// stopwords tell the Latin-script languages apart.
var stopwords = map[string][]string{
	"en": {"the", "and", "is", "of", "to", "in", "that", "it", "with", "for", "this", "are", "was", "you"},
	"es": {"el", "la", "los", "las", "que", "y", "es", "de", "en", "un", "una", "por", "con", "para", "del"},
	"fr": {"le", "la", "les", "et", "est", "des", "une", "un", "que", "dans", "pour", "pas", "sur", "du", "il"},
	"de": {"der", "die", "das", "und", "ist", "nicht", "ein", "eine", "zu", "mit", "den", "von", "sich", "auf", "ich"},
}

// detectLanguage names the language of the end of text (its last 600
// characters): zh, en, ja, ko, es, fr, de, ru, or "default".
func detectLanguage(text string) string {
	r := []rune(text)
	if len(r) > 600 {
		r = r[len(r)-600:]
	}
	var han, kana, hangul, cyrillic, latin int
	for _, c := range r {
		switch {
		case unicode.Is(unicode.Hiragana, c) || unicode.Is(unicode.Katakana, c):
			kana++
		case unicode.Is(unicode.Han, c):
			han++
		case unicode.Is(unicode.Hangul, c):
			hangul++
		case unicode.Is(unicode.Cyrillic, c):
			cyrillic++
		case unicode.Is(unicode.Latin, c):
			latin++
		}
	}
	switch {
	case kana > 0 && kana*10 >= han: // Japanese mixes kana into its kanji
		return "ja"
	case han > 0 && han >= hangul && han*2 >= latin:
		return "zh"
	case hangul > 0 && hangul*2 >= latin:
		return "ko"
	case cyrillic > 0 && cyrillic >= latin:
		return "ru"
	case latin == 0:
		return "default"
	}
	return latinLanguage(string(r))
}

func latinLanguage(text string) string {
	lower := strings.ToLower(text)
	score := map[string]int{}
	for _, w := range strings.FieldsFunc(lower, func(r rune) bool { return !unicode.IsLetter(r) }) {
		for lang, words := range stopwords {
			for _, s := range words {
				if w == s {
					score[lang]++
				}
			}
		}
	}
	// Letters only one language uses weigh more than a stopword.
	score["es"] += 3*strings.Count(lower, "ñ") + 3*strings.Count(lower, "¿") + 3*strings.Count(lower, "¡")
	score["fr"] += 2*strings.Count(lower, "ç") + 2*strings.Count(lower, "è") + 2*strings.Count(lower, "ê") + strings.Count(lower, "à")
	score["de"] += 3*strings.Count(lower, "ß") + 2*strings.Count(lower, "ä") + 2*strings.Count(lower, "ö") + 2*strings.Count(lower, "ü")
	best, bestScore := "default", 1 // at least two signals to name a language
	for _, lang := range []string{"en", "es", "fr", "de"} {
		if score[lang] > bestScore {
			best, bestScore = lang, score[lang]
		}
	}
	return best
}
