// Package version implements the `version` verb shared by kubectl-rotate and
// kops-rotate: it prints the build stamp and the versions of the libraries
// that decide how the binary talks to clusters and keystores.
package version

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"
	"sigs.k8s.io/yaml"

	buildinfo "github.com/kube-rotate/kube-rotate/pkg/version"
)

// Options holds the flags and streams of the version command.
type Options struct {
	// Output is "", "json" or "yaml".
	Output string
	// Short prints only the version string.
	Short bool

	info buildinfo.Info
	genericiooptions.IOStreams
}

// NewOptions returns Options writing to streams.
func NewOptions(streams genericiooptions.IOStreams) *Options {
	return &Options{IOStreams: streams}
}

// NewCmdVersion returns the `version` command. binary is the name shown in
// examples (for example "kubectl rotate" or "kops-rotate").
func NewCmdVersion(binary string, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewOptions(streams)
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of " + binary + " and of the libraries it is built with",
		Example: templates.Examples(fmt.Sprintf(`
			# Version, commit, build date and library versions
			%[1]s version

			# Only the version string, for scripts
			%[1]s version --short

			# Machine-readable
			%[1]s version -o json`, binary)),
		Args: cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			cmdutil.CheckErr(o.Complete())
			cmdutil.CheckErr(o.Validate())
			cmdutil.CheckErr(o.Run())
		},
	}
	cmd.Flags().StringVarP(&o.Output, "output", "o", o.Output, "Output format: json or yaml. Default is human-readable text.")
	cmd.Flags().BoolVar(&o.Short, "short", o.Short, "Print only the version string.")
	return cmd
}

// Complete reads the build information of the running binary.
func (o *Options) Complete() error {
	o.info = buildinfo.Get()
	return nil
}

// Validate checks the flags.
func (o *Options) Validate() error {
	switch o.Output {
	case "", "json", "yaml":
	default:
		return fmt.Errorf("--output %q is not supported: use json or yaml, or leave it empty for text", o.Output)
	}
	if o.Short && o.Output != "" {
		return fmt.Errorf("--short and --output cannot be used together: drop one of them")
	}
	return nil
}

// Run prints the version.
func (o *Options) Run() error {
	return Print(o.Out, o.info, o.Output, o.Short)
}

// Print writes info to w as text, json or yaml.
func Print(w io.Writer, info buildinfo.Info, output string, short bool) error {
	switch {
	case short:
		_, err := fmt.Fprintln(w, info.Version)
		return err
	case output == "json":
		b, err := json.MarshalIndent(info, "", "  ")
		if err != nil {
			return fmt.Errorf("encoding version as JSON: %w", err)
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	case output == "yaml":
		b, err := yaml.Marshal(info)
		if err != nil {
			return fmt.Errorf("encoding version as YAML: %w", err)
		}
		_, err = w.Write(b)
		return err
	}
	fmt.Fprintf(w, "Version:  %s\n", info.Version)
	if info.Commit != "" {
		fmt.Fprintf(w, "Commit:   %s\n", info.Commit)
	}
	if info.Date != "" {
		fmt.Fprintf(w, "Built:    %s\n", info.Date)
	}
	fmt.Fprintf(w, "Go:       %s %s\n", info.GoVersion, info.Platform)
	deps := make([]string, 0, len(info.Dependencies))
	for k := range info.Dependencies {
		deps = append(deps, k)
	}
	sort.Strings(deps)
	for _, k := range deps {
		fmt.Fprintf(w, "Library:  %s %s\n", k, info.Dependencies[k])
	}
	return nil
}
