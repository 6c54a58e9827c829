// Package verbosity wires klog's -v flag, as kubectl has it, with a cap:
// from level 8 client-go logs request and response bodies, which for
// Secrets are their values.
package verbosity

import (
	"flag"
	"fmt"
	"strconv"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"
)

// Max is the highest level allowed: 6 logs each request's verb, URL and
// status (what `kubectl -v=6` shows), 7 adds headers with credentials masked.
const Max = 7

var fs = func() *flag.FlagSet {
	f := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(f)
	return f
}()

// AddFlags adds -v/--v to flags.
func AddFlags(flags *pflag.FlagSet) {
	v := pflag.PFlagFromGoFlag(fs.Lookup("v"))
	v.Shorthand = "v"
	v.Usage = fmt.Sprintf("Log level of API requests (6 shows every request, as kubectl -v=6; at most %d, since higher levels log Secret values).", Max)
	flags.AddFlag(v)
}

// Validate refuses levels that would log values.
func Validate() error {
	lvl, err := strconv.Atoi(fs.Lookup("v").Value.String())
	if err != nil {
		return err
	}
	if lvl > Max {
		return fmt.Errorf("-v=%d would log request and response bodies, which hold Secret values: use -v=%d or lower", lvl, Max)
	}
	return nil
}
