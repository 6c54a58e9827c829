package kops

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// CLIOptions are the flags kops-rotate passes to the kops CLI steps, as
// kops v1.36.2 names them (cmd/kops/update_cluster.go,
// rolling-update_cluster.go, export_kubeconfig.go, validate_cluster.go).
// The zero value is kOps' documented procedure as written.
type CLIOptions struct {
	// Target is update's --target: "" or "direct" applies to the cloud;
	// "terraform" writes Terraform to Out, which a person applies.
	Target string `json:"target,omitempty"`
	// Out is update's --out (the Terraform directory).
	Out string `json:"out,omitempty"`
	// InstanceGroupRoles is rolling-update's --instance-group-roles.
	InstanceGroupRoles []string `json:"instanceGroupRoles,omitempty"`
	// ValidateCount is rolling-update's --validate-count; nil leaves kOps'
	// default.
	ValidateCount *int32 `json:"validateCount,omitempty"`
	// CloudOnly is rolling-update's --cloudonly (no drain, no validation:
	// downtime).
	CloudOnly bool `json:"cloudOnly,omitempty"`
	// Admin is export's --admin lifetime after the promote; 0 is kOps'
	// default (18h).
	Admin time.Duration `json:"admin,omitempty"`
	// User is export's --user: an existing kubeconfig user instead of the
	// admin credential.
	User string `json:"user,omitempty"`
	// AuthPlugin is export's --auth-plugin.
	AuthPlugin bool `json:"authPlugin,omitempty"`
	// Kubeconfig is export's and validate's --kubeconfig.
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// Context is the kubeconfig context the service-account token check
	// reads ("" is the cluster name, as kops export kubecfg names it).
	Context string `json:"context,omitempty"`
	// ValidateWait is validate's --wait after each rolling update; 0 is
	// DefaultValidateWait.
	ValidateWait time.Duration `json:"validateWait,omitempty"`
}

// DefaultValidateWait is how long `kops validate cluster --wait` waits
// after each rolling update unless told otherwise.
const DefaultValidateWait = 15 * time.Minute

// Terraform reports whether updates render Terraform for a person to
// apply instead of changing the cloud.
func (o CLIOptions) Terraform() bool { return o.Target == "terraform" }

// Validate checks the flags together, naming the flag and the fix.
func (o CLIOptions) Validate() error {
	switch o.Target {
	case "", "direct":
		if o.Out != "" {
			return fmt.Errorf("--out is for --target terraform: drop --out, or add --target terraform")
		}
	case "terraform":
		if o.Out == "" {
			return fmt.Errorf("--target terraform needs --out DIR: the directory kops writes the Terraform to, and you apply")
		}
	default:
		return fmt.Errorf("--target %q is not a kops update target: use direct or terraform", o.Target)
	}
	for _, r := range o.InstanceGroupRoles {
		switch strings.ToLower(r) {
		case "apiserver", "bastion", "control-plane", "master", "node":
		default:
			return fmt.Errorf("--instance-group-roles: %q is not an instance group role: use apiserver, bastion, control-plane or node", r)
		}
	}
	if o.ValidateCount != nil && *o.ValidateCount < 0 {
		return fmt.Errorf("--validate-count must be 0 or more")
	}
	if o.User != "" && (o.Admin != 0 || o.AuthPlugin) {
		return fmt.Errorf("--user cannot be used with --admin or --auth-plugin (kops export kubecfg refuses both): keep one")
	}
	if o.Admin < 0 || o.ValidateWait < 0 {
		return fmt.Errorf("--admin and --validate-wait take a positive duration, for example 8h or 20m")
	}
	return nil
}

// Args returns the kops CLI arguments of a step that runs kops (update,
// rolling-update, validate, export), or nil for any other step.
func (o CLIOptions) Args(step string) []string {
	switch step {
	case StepUpdate1, StepUpdate2, StepUpdate3:
		args := []string{"update", "cluster", "--yes"}
		if o.Terraform() {
			args = append(args, "--target", "terraform", "--out", o.Out)
		}
		return args
	case StepRoll1, StepRoll2, StepRoll3:
		args := []string{"rolling-update", "cluster", "--yes"}
		if len(o.InstanceGroupRoles) > 0 {
			args = append(args, "--instance-group-roles", strings.Join(o.InstanceGroupRoles, ","))
		}
		if o.ValidateCount != nil {
			args = append(args, "--validate-count", strconv.Itoa(int(*o.ValidateCount)))
		}
		if o.CloudOnly {
			args = append(args, "--cloudonly")
		}
		return args
	case StepValidate1, StepValidate2, StepValidate3:
		wait := o.ValidateWait
		if wait == 0 {
			wait = DefaultValidateWait
		}
		return append([]string{"validate", "cluster", "--wait", wait.String()}, o.kubeconfig()...)
	case StepExport1, StepExportAfterDistr:
		return append(append([]string{"export", "kubecfg"}, o.credentials(false)...), o.kubeconfig()...)
	case StepExportAfterProm:
		// New admin credentials are issued by the new CA.
		return append(append([]string{"export", "kubecfg"}, o.credentials(true)...), o.kubeconfig()...)
	}
	return nil
}

// credentials are export's user flags. The export after the promote asks
// for the admin credential the new CA issues (with --admin's lifetime),
// unless another user is named; the other exports only refresh the CA
// data, as kOps' procedure has them.
func (o CLIOptions) credentials(afterPromote bool) []string {
	var out []string
	switch {
	case o.User != "":
		out = append(out, "--user", o.User)
	case o.Admin != 0 && afterPromote:
		out = append(out, "--admin="+o.Admin.String())
	case afterPromote && !o.AuthPlugin:
		out = append(out, "--admin")
	}
	if o.AuthPlugin {
		out = append(out, "--auth-plugin")
	}
	return out
}

func (o CLIOptions) kubeconfig() []string {
	if o.Kubeconfig == "" {
		return nil
	}
	return []string{"--kubeconfig", o.Kubeconfig}
}
