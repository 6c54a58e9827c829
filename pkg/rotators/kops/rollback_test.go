package kops

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"
)

// A rolling update finds nothing to roll unless `kops update cluster
// --yes` ran first: the instances' user data carries a hash of the CA
// bundle and the primary ids, so only an update marks them NeedsUpdate.
func TestRollbackAndNextCommandsPerStage(t *testing.T) {
	ctx := context.Background()
	const target = " --name c --state s"
	update := "kops update cluster --yes" + target
	roll := "kops rolling-update cluster --yes" + target
	validate := "kops validate cluster --wait 15m0s" + target
	rollback := "kops-rotate rollback" + target
	person := func(step string) string { return CLIOptions{}.Command(ctx, step, "c", "s") }
	// A kubernetes-ca rotation: the CA data and the admin credentials are
	// handed out by a person.
	sc := Scope{Keysets: map[string]bool{"kubernetes-ca": true}}
	rec := &Record{Skip: func(st string) bool { return !sc.Applies(st) }}
	tests := []struct {
		name     string
		stage    Stage
		rollback []string
		next     []string
	}{
		{"idle", StageIdle, nil, []string{"kops-rotate stage all" + target}},
		{"staged", StageStaged, []string{rollback, update, roll},
			[]string{update, roll, validate, "kops export kubecfg" + target, person(StepDistributeCA), "kops-rotate promote all" + target}},
		{"promoted", StagePromoted, []string{rollback, update, roll},
			[]string{update, roll, validate, "kops export kubecfg --admin" + target, person(StepDistributeCreds), "kops-rotate distrust all" + target}},
		{"distrusted", StageDistrusted, []string{rollback, update, "kops rolling-update cluster --force --yes" + target},
			[]string{update, roll, validate, "kops export kubecfg" + target}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RollbackCommands(ctx, tt.stage, "c", "s"); !reflect.DeepEqual(got, tt.rollback) {
				t.Errorf("RollbackCommands(%s) =\n  %q\nwant\n  %q", tt.stage, got, tt.rollback)
			}
			if got := NextCommands(ctx, tt.stage, rec, "c", "s"); !reflect.DeepEqual(got, tt.next) {
				t.Errorf("NextCommands(%s) =\n  %q\nwant\n  %q", tt.stage, got, tt.next)
			}
			for _, list := range [][]string{RollbackCommands(ctx, tt.stage, "c", "s"), NextCommands(ctx, tt.stage, rec, "c", "s")} {
				updated := false
				for _, c := range list {
					if strings.HasPrefix(c, "kops update cluster --yes") {
						updated = true
					}
					if strings.HasPrefix(c, "kops rolling-update") && !updated {
						t.Errorf("%q comes without a `kops update cluster --yes` before it in %q", c, list)
					}
				}
			}
		})
	}
}

// The pass-through flags reach every kops command line, and with
// --target terraform a person applies what the update wrote before the
// rolling update, in the procedure and in its rollback.
func TestCLIOptionsReachTheCommandLines(t *testing.T) {
	ctx := context.Background()
	count := int32(2)
	o := CLIOptions{Target: "terraform", Out: "/tf", InstanceGroupRoles: []string{"control-plane", "node"}, ValidateCount: &count,
		CloudOnly: true, Admin: 8 * time.Hour, Kubeconfig: "/k", ValidateWait: 20 * time.Minute}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	const target = " --name c --state s"
	want := map[string]string{
		StepUpdate2:          "kops update cluster --yes --target terraform --out /tf" + target,
		StepRoll2:            "kops rolling-update cluster --yes --instance-group-roles control-plane,node --validate-count 2 --cloudonly" + target,
		StepValidate2:        "kops validate cluster --wait 20m0s --kubeconfig /k" + target,
		StepExportAfterProm:  "kops export kubecfg --admin=8h0m0s --kubeconfig /k" + target,
		StepExport1:          "kops export kubecfg --kubeconfig /k" + target,
		StepExportAfterDistr: "kops export kubecfg --kubeconfig /k" + target,
	}
	for step, w := range want {
		if got := o.Command(ctx, step, "c", "s"); got != w {
			t.Errorf("%s: %q, want %q", step, got, w)
		}
	}
	rb := o.RollbackCommands(ctx, StageDistrusted, "c", "s")
	if len(rb) != 4 || rb[1] != want[StepUpdate2] || !strings.Contains(rb[2], "terraform apply") ||
		rb[3] != "kops rolling-update cluster --force --yes --instance-group-roles control-plane,node --validate-count 2 --cloudonly"+target {
		t.Errorf("rollback with terraform: %q", rb)
	}
	user := CLIOptions{User: "oidc", AuthPlugin: false}
	if got := user.Command(ctx, StepExportAfterProm, "c", "s"); got != "kops export kubecfg --user oidc"+target {
		t.Errorf("export with --user: %q", got)
	}
}

// Bad flag combinations are refused with the flag and the fix.
func TestCLIOptionsValidate(t *testing.T) {
	neg := int32(-1)
	for _, tt := range []struct {
		o    CLIOptions
		want string
	}{
		{CLIOptions{Target: "terraform"}, "--target terraform needs --out DIR"},
		{CLIOptions{Out: "/tf"}, "--out is for --target terraform"},
		{CLIOptions{Target: "cloudformation"}, `--target "cloudformation" is not a kops update target`},
		{CLIOptions{InstanceGroupRoles: []string{"worker"}}, `"worker" is not an instance group role`},
		{CLIOptions{ValidateCount: &neg}, "--validate-count must be 0 or more"},
		{CLIOptions{User: "u", Admin: time.Hour}, "--user cannot be used with --admin or --auth-plugin"},
	} {
		if err := tt.o.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.o, err, tt.want)
		}
	}
}
