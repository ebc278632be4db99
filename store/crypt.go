package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
)

var (
	// ErrNoSecretKey: a literal provider key cannot be stored (or read)
	// without LLMPROXY_SECRET_KEY.
	ErrNoSecretKey = errors.New("a literal provider key is encrypted at rest with LLMPROXY_SECRET_KEY, which is not set; use an env:NAME reference instead, or set LLMPROXY_SECRET_KEY (generate one with: openssl rand -hex 32)")
	// ErrWrongSecretKey: a stored literal does not open with this
	// LLMPROXY_SECRET_KEY.
	ErrWrongSecretKey = errors.New("the stored provider key cannot be decrypted with this LLMPROXY_SECRET_KEY: it was saved with another key, or the stored value was altered; set the key it was saved with, or enter the provider key again")
)

var errBadSecretKey = errors.New("LLMPROXY_SECRET_KEY must be 32 random bytes written as 64 hex digits or in base64; generate one with: openssl rand -hex 32")

// ParseSecretKey reads LLMPROXY_SECRET_KEY: 64 hex digits, or the base64
// (standard or URL alphabet, padded or not) of 32 bytes. Surrounding
// space (a file's trailing newline) is ignored. The error never holds
// the value.
func ParseSecretKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	var key []byte
	if len(s) == 64 {
		key, _ = hex.DecodeString(s)
	}
	if key == nil {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(s); err == nil && len(b) == 32 {
				key = b
				break
			}
		}
	}
	if len(key) != 32 {
		return nil, errBadSecretKey
	}
	// All bytes alike (64 zeros, "AAAA…") is a placeholder, not a key.
	same := true
	for _, b := range key[1:] {
		same = same && b == key[0]
	}
	if same {
		return nil, errors.New("LLMPROXY_SECRET_KEY looks like a placeholder; generate one with: openssl rand -hex 32")
	}
	return key, nil
}

// sealVersion is the first byte of every sealed value, so that another
// cipher or a key rotation can be told apart later.
const sealVersion = 1

// keyAAD binds a sealed value to its row: the provider and key names are
// authenticated with it, so a ciphertext copied to another key fails to
// open instead of sending one provider's key to another. Neither name can
// hold a NUL (validated on write), so the encoding is unambiguous.
func keyAAD(provider, key string) []byte {
	return []byte("llmproxy provider key\x00" + provider + "\x00" + key)
}

// seal encrypts secret with AES-256-GCM under a fresh random nonce:
// version || nonce || ciphertext+tag.
func seal(aead cipher.AEAD, secret string, aad []byte) ([]byte, error) {
	if aead == nil {
		return nil, ErrNoSecretKey
	}
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(secret)+aead.Overhead())
	out[0] = sealVersion
	// A random 96-bit nonce per value: far below GCM's 2^32-messages
	// bound for random nonces (NIST SP 800-38D §8.3) at any number of
	// provider keys a panel holds.
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return aead.Seal(out, out[1:], []byte(secret), aad), nil
}

// open decrypts what seal wrote. Any failure (short, another version,
// another key, altered, moved to another row) is ErrWrongSecretKey;
// without a key (aead nil) it is ErrNoSecretKey.
func open(aead cipher.AEAD, sealed, aad []byte) (string, error) {
	if aead == nil {
		return "", ErrNoSecretKey
	}
	n := aead.NonceSize()
	if len(sealed) < 1+n+aead.Overhead() || sealed[0] != sealVersion {
		return "", ErrWrongSecretKey
	}
	plain, err := aead.Open(nil, sealed[1:1+n], sealed[1+n:], aad)
	if err != nil {
		return "", ErrWrongSecretKey
	}
	return string(plain), nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, errBadSecretKey
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
