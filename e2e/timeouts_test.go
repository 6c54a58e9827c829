//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// timeoutScaleEnv multiplies the suite's rollout and wait timeouts. It is
// unset (1) on the local control plane, whose kwok nodes make pods Ready
// at once; the e2e-kind workflow sets it, because a real kubelet starts
// containers and takes seconds per rollout. Timeouts a test expects to
// expire on every cluster (a consumer that can never be scheduled) are not
// scaled: a larger one would only make the test slower.
const timeoutScaleEnv = "E2E_TIMEOUT_SCALE"

// timeoutScale is E2E_TIMEOUT_SCALE, read by loadTimeoutScale in TestMain.
var timeoutScale = 1.0

// loadTimeoutScale reads E2E_TIMEOUT_SCALE: a number >= 1, empty for 1.
func loadTimeoutScale() error {
	v := os.Getenv(timeoutScaleEnv)
	if v == "" {
		return nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 1 || f > 100 {
		return fmt.Errorf("%s=%q: want a number from 1 to 100 (how much longer rollouts may take than on kwok nodes)", timeoutScaleEnv, v)
	}
	timeoutScale = f
	return nil
}

// scaled is d multiplied by E2E_TIMEOUT_SCALE, in whole seconds when d is
// (so a --timeout flag and the command's "within 15s" read the same).
func scaled(d time.Duration) time.Duration {
	s := time.Duration(float64(d) * timeoutScale)
	if d%time.Second == 0 {
		s = s.Round(time.Second)
	}
	return s
}

// timeoutFlag is scaled(d) as a kubectl-rotate --timeout value.
func timeoutFlag(d time.Duration) string { return scaled(d).String() }
