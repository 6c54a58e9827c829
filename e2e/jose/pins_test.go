package jose

import "testing"

// TestPins: Version, testdata/package.json and testdata/package-lock.json
// name the same jose, and the lock file holds its integrity hash. Needs
// neither node nor npm.
func TestPins(t *testing.T) {
	if err := checkPins(); err != nil {
		t.Fatal(err)
	}
	if len(jwksScript) == 0 {
		t.Fatal("testdata/jwks.mjs is not embedded")
	}
}
