package store

import (
	"bytes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

func TestParseSecretKey(t *testing.T) {
	t.Parallel()
	raw := testKey
	for _, tc := range []struct {
		name  string
		in    string
		want  []byte // nil: an error
		place bool   // the error says placeholder
	}{
		{"hex", hex.EncodeToString(raw), raw, false},
		{"hex upper with newline", strings.ToUpper(hex.EncodeToString(raw)) + "\n", raw, false},
		{"base64", base64.StdEncoding.EncodeToString(raw), raw, false},
		{"base64 raw url", base64.RawURLEncoding.EncodeToString(raw), raw, false},
		{"empty", "", nil, false},
		{"short hex", hex.EncodeToString(raw[:16]), nil, false},
		{"long hex", hex.EncodeToString(append(raw, 1)), nil, false},
		{"base64 of 31 bytes", base64.StdEncoding.EncodeToString(raw[:31]), nil, false},
		{"a passphrase", "correct horse battery staple, quite long indeed!!", nil, false},
		{"zeros", strings.Repeat("0", 64), nil, true},
		{"all A base64", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x41}, 32)), nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseSecretKey(tc.in)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("accepted: %x", got)
				}
				if !strings.Contains(err.Error(), "openssl rand -hex 32") {
					t.Errorf("error %q does not say how to make a key", err)
				}
				if strings.Contains(err.Error(), "placeholder") != tc.place {
					t.Errorf("error %q: placeholder mention %v, want %v", err, !tc.place, tc.place)
				}
				if s := strings.TrimSpace(tc.in); len(s) >= 8 && strings.Contains(err.Error(), s) {
					t.Errorf("error %q holds the value", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("got %x, want %x", got, tc.want)
			}
		})
	}
}

func FuzzParseSecretKey(f *testing.F) {
	for _, s := range []string{hex.EncodeToString(testKey), base64.StdEncoding.EncodeToString(testKey), "", "00", strings.Repeat("a", 64), "====", " \n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		key, err := ParseSecretKey(s)
		if err != nil {
			if key != nil {
				t.Fatal("a key with an error")
			}
			if t := strings.TrimSpace(s); len(t) >= 8 && strings.Contains(err.Error(), t) {
				panic("the error holds the value")
			}
			return
		}
		if len(key) != 32 {
			t.Fatalf("%d bytes", len(key))
		}
		// What it accepted, written in hex, reads back the same.
		again, err := ParseSecretKey(hex.EncodeToString(key))
		if err != nil || !bytes.Equal(again, key) {
			t.Fatalf("hex round trip: %v", err)
		}
	})
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	aead, err := newAEAD(testKey)
	if err != nil {
		t.Fatal(err)
	}
	other := bytes.Clone(testKey)
	other[0] ^= 1
	otherAEAD, _ := newAEAD(other)
	const secret = "sk-proj-abcdefghijklmnop"
	sealed, err := seal(aead, secret, keyAAD("p", "k"))
	if err != nil {
		t.Fatal(err)
	}
	again, _ := seal(aead, secret, keyAAD("p", "k"))
	if bytes.Equal(sealed, again) {
		t.Error("two seals of one secret are equal: the nonce is not fresh")
	}
	if bytes.Contains(sealed, []byte(secret)) {
		t.Error("sealed value holds the secret")
	}
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	for _, tc := range []struct {
		name   string
		aead   cipher.AEAD
		sealed []byte
		aad    []byte
		want   error
	}{
		{"right", aead, sealed, keyAAD("p", "k"), nil},
		{"no key", nil, sealed, keyAAD("p", "k"), ErrNoSecretKey},
		{"other key", otherAEAD, sealed, keyAAD("p", "k"), ErrWrongSecretKey},
		{"other provider", aead, sealed, keyAAD("q", "k"), ErrWrongSecretKey},
		{"other key name", aead, sealed, keyAAD("p", "k2"), ErrWrongSecretKey},
		{"names shifted", aead, sealed, keyAAD("p\x00k", ""), ErrWrongSecretKey},
		{"altered", aead, flipped, keyAAD("p", "k"), ErrWrongSecretKey},
		{"truncated", aead, sealed[:10], keyAAD("p", "k"), ErrWrongSecretKey},
		{"empty", aead, nil, keyAAD("p", "k"), ErrWrongSecretKey},
		{"other version", aead, append([]byte{2}, sealed[1:]...), keyAAD("p", "k"), ErrWrongSecretKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := open(tc.aead, tc.sealed, tc.aad)
			if err != tc.want {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if err == nil && got != secret {
				t.Errorf("got %q", got)
			}
			if err != nil && got != "" {
				t.Errorf("a value with an error")
			}
		})
	}
	if _, err := seal(nil, secret, nil); err != ErrNoSecretKey {
		t.Errorf("seal without a key: %v", err)
	}
}

// open reads bytes from the database file: whatever they hold, it
// returns an error or the sealed secret, and never panics.
func FuzzOpen(f *testing.F) {
	aead, _ := newAEAD(testKey)
	good, _ := seal(aead, "sk-0123456789abcdef", keyAAD("p", "k"))
	f.Add(good, "p", "k")
	f.Add([]byte{1}, "p", "k")
	f.Add([]byte{}, "", "")
	f.Fuzz(func(t *testing.T, sealed []byte, provider, key string) {
		got, err := open(aead, sealed, keyAAD(provider, key))
		if err != nil {
			if err != ErrWrongSecretKey || got != "" {
				t.Fatalf("%q, %v", got, err)
			}
			return
		}
		// Only a value sealed for p/k opens (each fuzz worker seals its
		// own seed, with its own nonce: compare meaning, not bytes).
		if provider != "p" || key != "k" || got != "sk-0123456789abcdef" {
			t.Fatalf("opened something it did not seal: %q", got)
		}
	})
}
