// Package digest is the keyed digest the test programs log of the values
// they load, and the tests compute to tell which value a pod runs with.
package digest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// Of is the first 16 hex digits of HMAC-SHA256(key, value): without the key
// a logged digest says nothing about the value.
func Of(key, value []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(value)
	return hex.EncodeToString(m.Sum(nil))[:16]
}
