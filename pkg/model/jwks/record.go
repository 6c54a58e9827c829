package jwks

import (
	"encoding/json"
	"fmt"
	"time"
)

// State of a key in the rotation.
type State string

// States.
const (
	// StateNext: published for verification, not yet signing.
	StateNext State = "next"
	// StateActive: the signing key.
	StateActive State = "active"
	// StateRetiring: verifies tokens it signed earlier; signs no more.
	StateRetiring State = "retiring"
	// StateExpired: past Slurm's exp for the key; its tokens are rejected.
	StateExpired State = "expired"
)

// KeyRecord is what the tool remembers about a key beyond the set itself:
// JWKS has no place for dates.
type KeyRecord struct {
	State   State      `json:"state"`
	Created *time.Time `json:"created,omitempty"`
	// Retired is when the key stopped signing (start of its overlap).
	Retired *time.Time `json:"retired,omitempty"`
}

// Records maps kid to its record. It is stored in an annotation on the
// Secret, or in a sidecar file next to a key-set file.
type Records map[string]KeyRecord

// ParseRecords reads records; empty input is no records.
func ParseRecords(data []byte) (Records, error) {
	r := Records{}
	if len(data) == 0 {
		return r, nil
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("the key records are not valid JSON: %w", err)
	}
	return r, nil
}

// Marshal writes records.
func (r Records) Marshal() ([]byte, error) { return json.Marshal(r) }
