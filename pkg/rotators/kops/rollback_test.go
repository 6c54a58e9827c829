package kops

import (
	"context"
	"reflect"
	"strings"
	"testing"
)

// A rolling update finds nothing to roll unless `kops update cluster
// --yes` ran first: the instances' user data carries a hash of the CA
// bundle and the primary ids, so only an update marks them NeedsUpdate.
func TestRollbackAndNextCommandsPerStage(t *testing.T) {
	ctx := context.Background()
	const target = " --name c --state s"
	update := "kops update cluster --yes" + target
	roll := "kops rolling-update cluster --yes" + target
	rollback := "kops-rotate rollback" + target
	tests := []struct {
		name     string
		stage    Stage
		rollback []string
		next     []string
	}{
		{"idle", StageIdle, nil, []string{"kops-rotate stage all" + target}},
		{"staged", StageStaged, []string{rollback, update, roll},
			[]string{update, roll, "kops export kubecfg" + target, "kops-rotate promote all" + target}},
		{"promoted", StagePromoted, []string{rollback, update, roll},
			[]string{update, roll, "kops export kubecfg --admin" + target, "kops-rotate distrust all" + target}},
		{"distrusted", StageDistrusted, []string{rollback, update, "kops rolling-update cluster --force --yes" + target},
			[]string{update, roll, "kops export kubecfg" + target}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RollbackCommands(ctx, tt.stage, "c", "s"); !reflect.DeepEqual(got, tt.rollback) {
				t.Errorf("RollbackCommands(%s) =\n  %q\nwant\n  %q", tt.stage, got, tt.rollback)
			}
			if got := NextCommands(ctx, tt.stage, &Record{}, "c", "s"); !reflect.DeepEqual(got, tt.next) {
				t.Errorf("NextCommands(%s) =\n  %q\nwant\n  %q", tt.stage, got, tt.next)
			}
			for _, list := range [][]string{RollbackCommands(ctx, tt.stage, "c", "s"), NextCommands(ctx, tt.stage, &Record{}, "c", "s")} {
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
