package verbosity

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestCapAtSeven(t *testing.T) {
	for _, tt := range []struct {
		arg     string
		wantErr bool
	}{{"-v=0", false}, {"-v=6", false}, {"--v=7", false}, {"-v=8", true}, {"-v=10", true}} {
		flags := pflag.NewFlagSet("t", pflag.ContinueOnError)
		AddFlags(flags)
		if err := flags.Parse([]string{tt.arg}); err != nil {
			t.Fatal(err)
		}
		err := Validate()
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: Validate() = %v", tt.arg, err)
		}
		if err != nil && !strings.Contains(err.Error(), "Secret values") {
			t.Errorf("%s: error does not say why: %v", tt.arg, err)
		}
	}
	_ = fs.Set("v", "0")
}
