package jwks

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
)

// State of a key in the rotation (an API type: key-set records print it).
type State = v1alpha1.KeyState

// States.
const (
	StateNext     = v1alpha1.KeyStateNext
	StateActive   = v1alpha1.KeyStateActive
	StateRetiring = v1alpha1.KeyStateRetiring
	StateExpired  = v1alpha1.KeyStateExpired
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

// RecordsAnnotation holds the per-kid records on a Secret.
const RecordsAnnotation = v1alpha1.RecordsAnnotation

// DefaultSecretKey is the data key DiracX keeps its key set under.
const DefaultSecretKey = "jwks.json"
