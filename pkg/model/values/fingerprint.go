package values

import (
	"crypto/sha256"
	"encoding/hex"
)

// fingerprintHexLen is how many hex digits of the sha256 a fingerprint
// keeps: enough to tell values apart in a history, too few to be useful
// as a hash of a high-entropy secret.
const fingerprintHexLen = 12

// Fingerprint returns a short, stable identifier of a value for records
// and plans ("sha256:" and the first 12 hex digits of its SHA-256), so
// users can see that a value changed, or that two values are the same,
// without seeing the value.
func Fingerprint(v []byte) string {
	sum := sha256.Sum256(v)
	return "sha256:" + hex.EncodeToString(sum[:])[:fingerprintHexLen]
}
