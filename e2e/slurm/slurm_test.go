//go:build e2e

package slurm_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kube-rotate/kube-rotate/e2e/slurm"
)

// TestHarness checks the harness itself: a job runs, the probe reads the
// kid slurmctld signs with, the daemons are isolated from the shared root
// and from the host's mounts, Stop leaves nothing running, and, as a
// negative control, the harness sees the failure a rotation must avoid: a
// new key put first in the controller's file (Slurm then signs with it) is
// unknown to the node, which logs "could not find kid" and runs no job.
func TestHarness(t *testing.T) {
	t.Parallel()
	k1 := newUUID4()
	// JobTimeout 15s: the negative control's job fails within 15s.
	c := slurm.Start(t, slurm.Options{ControllerKeys: charmedSet(k1), JobTimeout: 15 * time.Second})

	for _, f := range []string{c.ControllerKeyFile(), c.NodeKeyFile()} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %o, want 0600", f, fi.Mode().Perm())
		}
	}
	signer, err := c.SignerKID()
	if err != nil {
		t.Fatal(err)
	}
	if signer != k1 {
		t.Errorf("probe: slurmctld signs with %s, want the only key %s", signer, k1)
	}
	job, err := c.RunJob()
	if err != nil {
		t.Fatal(err)
	}
	if job.Output != c.NodeName {
		t.Errorf("job printed %q, want %q", job.Output, c.NodeName)
	}
	if job.LaunchKID != k1 {
		t.Errorf("the launch credential in slurmctld's reply has kid %q, want %s", job.LaunchKID, k1)
	}
	t.Logf("job ran in %s", job.Duration.Round(time.Millisecond))
	if s, err := c.NodeState(); err != nil || s != "idle" {
		t.Errorf("node state %q (%v), want idle", s, err)
	}

	// Each daemon has its own SACK socket; none is in the shared root,
	// and no mount of the namespaces shows on the host.
	for _, sock := range []string{"sack/ctld/sack.socket", "sack/node/sack.socket"} {
		if fi, err := os.Stat(filepath.Join(c.Dir, sock)); err != nil || fi.Mode().Type() != os.ModeSocket {
			t.Errorf("%s: not a socket (%v)", sock, err)
		}
	}
	for _, d := range []string{"run/slurm", "run/slurmctld", "run/slurmdbd"} {
		if entries, _ := os.ReadDir(filepath.Join(c.Root, d)); len(entries) > 0 {
			t.Errorf("the shared root's /%s is not empty: %v", d, entries)
		}
	}
	if m := hostMountsUnder(t, c.Root); len(m) > 0 {
		t.Errorf("mounts under the root leaked to the host: %v", m)
	}

	// An unchanged reconfigure keeps everything as it was.
	if err := c.Reconfigure(); err != nil {
		t.Fatal(err)
	}
	if signer, err := c.SignerKID(); err != nil || signer != k1 {
		t.Errorf("after reconfigure: probe says %q (%v), want %s", signer, err, k1)
	}
	if _, err := c.RunJob(); err != nil {
		t.Errorf("after reconfigure: %v", err)
	}
	if bad := grepLines(c.Logs(), "could not find kid"); bad != "" {
		t.Fatalf("before the negative control, the logs already have:\n%s", bad)
	}

	// Negative control: a new key FIRST in the controller's file only.
	newKID := newUUID4()
	keys := readKeys(t, c.ControllerKeyFile())
	keys = append([]map[string]any{charmedKey(newKID)}, keys...)
	writeKeys(t, c.ControllerKeyFile(), keys)
	err = c.Reconfigure()
	if err == nil {
		t.Errorf("reconfigure with a new first key the node lacks: want an error (slurmd rejects the request), got none")
	} else {
		t.Logf("reconfigure, as expected: %v", firstLine(err.Error()))
	}
	if signer, err := c.SignerKID(); err != nil || signer != newKID {
		t.Errorf("probe after the new first key: %q (%v), want the new kid %s", signer, err, newKID)
	}
	if want := "could not find kid=" + newKID; !strings.Contains(c.NodeLog(), want) {
		t.Errorf("the node's log lacks %q:\n%s", want, tail(c.NodeLog(), 10))
	}
	begin := time.Now()
	job, err = c.RunJob()
	if err == nil {
		t.Errorf("a job ran although the node cannot verify the controller's key: %q", job.Output)
	} else {
		t.Logf("job failed in %s, as expected: %v", time.Since(begin).Round(time.Millisecond), firstLine(err.Error()))
	}
	if job.LaunchKID != "" && job.LaunchKID != newKID {
		t.Errorf("launch credential signed with %s, want the new kid %s", job.LaunchKID, newKID)
	}

	if err := c.Stop(); err != nil {
		t.Error(err)
	}
	if pids := c.Processes(); len(pids) > 0 {
		t.Errorf("processes of the cluster still running after Stop: %v", pids)
	}
}

// TestRotateCharmedHPCKeySet rotates a key set written as Charmed HPC writes
// slurm.jwks (one uuid4 key, no "use").
func TestRotateCharmedHPCKeySet(t *testing.T) {
	t.Parallel()
	k1 := newUUID4()
	rotateScenario(t, charmedSet(k1), k1)
}

// TestRotateSchedMDKeySet rotates a key set written as SchedMD documents it
// (doc/html/authentication.shtml): free-text kids, the "use":"default" key
// second, an "exp" on the other one, a lowercase alg.
func TestRotateSchedMDKeySet(t *testing.T) {
	t.Parallel()
	rotateScenario(t, schedMDSet(time.Now().Add(30*24*time.Hour).Unix()), "key-identifier-2")
}

// rotateScenario runs add, distribute, promote, delete on the controller's
// file of a cluster started with set in both files, checking after every
// step that a job runs, that the key jwk list calls active is the one
// slurmctld signs with, and that no daemon logged "could not find kid".
func rotateScenario(t *testing.T, set []byte, signer string) {
	bin := kubectlRotate(t)
	c := slurm.Start(t, slurm.Options{ControllerKeys: set})
	ctrl := c.ControllerKeyFile()
	// Owner root (the SlurmUser), group nogroup: a command that rewrites
	// the file must keep both, and the mode.
	if err := os.Chown(ctrl, 0, 65534); err != nil {
		t.Fatal(err)
	}
	meta := statOf(t, ctrl)

	checkStep(t, c, bin, "step 0 (start)", signer)
	before := readKeys(t, ctrl)

	// 1. add: the new key goes last, without "use"; who signs does not
	// change, so the node, which has only the old keys, keeps working.
	mustRotate(t, bin, "jwk", "add", "--file", ctrl)
	checkMeta(t, ctrl, meta, "jwk add")
	added := readKeys(t, ctrl)
	var fresh []string
	for _, kid := range kids(added) {
		if !slices.Contains(kids(before), kid) {
			fresh = append(fresh, kid)
		}
	}
	if len(fresh) != 1 || len(added) != len(before)+1 {
		t.Fatalf("jwk add: kids %v, were %v: want one new key", kids(added), kids(before))
	}
	newKID := fresh[0]
	newKey := added[slices.Index(kids(added), newKID)]
	if !reflect.DeepEqual(added[:len(before)], before) || kids(added)[len(before)] != newKID {
		// Reported, not fatal: the steps below show what Slurm makes of it.
		t.Errorf("jwk add: kids %v, were %v: want the existing keys unchanged, in order, and the new key %s last", kids(added), kids(before), newKID)
	}
	if _, ok := newKey["use"]; ok {
		t.Errorf("jwk add: the new key %s has \"use\": %v, want none (it must not sign yet)", newKID, newKey["use"])
	}
	if st := stateOf(t, bin, ctrl, newKID); st != "next" {
		t.Errorf("jwk list: the new key %s is %q, want next", newKID, st)
	}
	reconfigure(t, c, "step 1 (add)")
	checkStep(t, c, bin, "step 1 (add, node file not yet updated)", signer)

	// 2. distribute the file to the node.
	if err := c.CopyKeysToNode(); err != nil {
		t.Fatal(err)
	}
	reconfigure(t, c, "step 2 (copy)")
	checkStep(t, c, bin, "step 2 (node file updated)", signer)

	// 3. promote: "use":"default" on the new key only, order kept.
	mustRotate(t, bin, "jwk", "promote", "--file", ctrl)
	checkMeta(t, ctrl, meta, "jwk promote")
	promoted := readKeys(t, ctrl)
	if !slices.Equal(kids(promoted), kids(added)) {
		t.Errorf("jwk promote changed the key order: %v, was %v", kids(promoted), kids(added))
	}
	for i, k := range promoted {
		kid, _ := k["kid"].(string)
		use, hasUse := k["use"]
		if kid == newKID {
			if use != "default" {
				t.Errorf("jwk promote: the promoted key %s has \"use\": %v, want \"default\"", kid, use)
			}
			continue
		}
		if hasUse {
			t.Errorf("jwk promote: key %s kept \"use\": %v, want none", kid, use)
		}
		if i < len(added) {
			was := maps(added[i])
			delete(was, "use")
			if !reflect.DeepEqual(k, was) {
				t.Errorf("jwk promote changed key %s beyond its \"use\"", kid)
			}
		}
	}
	if err := c.CopyKeysToNode(); err != nil {
		t.Fatal(err)
	}
	reconfigure(t, c, "step 3 (promote)")
	checkStep(t, c, bin, "step 3 (promote, copied to node)", newKID)

	// 4. delete the previous signing key.
	mustRotate(t, bin, "jwk", "delete", "--file", ctrl, signer, "--force")
	checkMeta(t, ctrl, meta, "jwk delete")
	deleted := readKeys(t, ctrl)
	want := slices.DeleteFunc(kids(promoted), func(k string) bool { return k == signer })
	if !slices.Equal(kids(deleted), want) {
		t.Errorf("jwk delete %s: kids %v, want %v", signer, kids(deleted), want)
	}
	if err := c.CopyKeysToNode(); err != nil {
		t.Fatal(err)
	}
	reconfigure(t, c, "step 4 (delete)")
	checkStep(t, c, bin, "step 4 (delete, copied to node)", newKID)
}

// TestExpiredKeyRejected shows that real Slurm rejects tokens of a key past
// its "exp", and what jwk list makes of such keys. The node has moved on to
// K2 (its default key) and its copy of K1, which slurmctld still signs
// with, gets an exp a few seconds ahead: jobs run until then and fail
// after, and jwk list calls K1 in the node's file expired. A signing key
// past its exp stays active (Slurm still signs with it) with a warning.
func TestExpiredKeyRejected(t *testing.T) {
	t.Parallel()
	bin := kubectlRotate(t)
	k1, k2 := charmedKey(newUUID4()), charmedKey(newUUID4())
	kid1 := k1["kid"].(string)
	set := func(keys ...map[string]any) []byte {
		data, err := json.Marshal(map[string]any{"keys": keys})
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	with := func(k map[string]any, field string, v any) map[string]any {
		k = maps(k)
		k[field] = v
		return k
	}
	c := slurm.Start(t, slurm.Options{
		ControllerKeys: set(with(k1, "use", "default"), k2),
		NodeKeys:       set(k1, with(k2, "use", "default")),
	})
	if _, err := c.RunJob(); err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(10 * time.Second).Truncate(time.Second)
	if err := c.SetNodeKeys(set(with(k1, "exp", exp.Unix()), with(k2, "use", "default"))); err != nil {
		t.Fatal(err)
	}
	// The reconfigure request is verified with the node's keys in
	// memory, before it re-reads its file: it goes through.
	if err := c.Reconfigure(); err != nil {
		t.Fatal(err)
	}
	// Before exp (checked only if the call ended before it: slurmd
	// sometimes takes 5s to accept a connection).
	if st := stateOf(t, bin, c.NodeKeyFile(), kid1); st != "retiring" && st != "next" && time.Until(exp) > 0 {
		t.Errorf("jwk list --file <node file>: %s is %q before its exp, want retiring or next", kid1, st)
	}
	if _, err := c.RunJob(); err != nil && time.Until(exp) > 0 {
		t.Errorf("before exp: %v", err)
	}
	// Slurm rejects a key once exp < now.
	time.Sleep(time.Until(exp.Add(1100 * time.Millisecond)))
	job, err := c.RunJob()
	if err == nil {
		t.Errorf("after exp: a job ran (%q) although the node's copy of the signing key expired", job.Output)
	}
	if want := "token received for expired key kid=" + kid1; !strings.Contains(c.NodeLog(), want) {
		t.Errorf("the node's log lacks %q:\n%s", want, tail(c.NodeLog(), 10))
	}
	row := rowOf(t, bin, c.NodeKeyFile(), kid1)
	if row.State != "expired" {
		t.Errorf("jwk list --file <node file>: %s is %q after its exp, want expired", kid1, row.State)
	}
	if row.Expires == "" {
		t.Errorf("jwk list: %s has no expires although its exp is %d", kid1, exp.Unix())
	}
	if bad := grepLines(c.Logs(), "could not find kid"); bad != "" {
		t.Errorf("logs:\n%s", bad)
	}

	// The same key as the signing key of a file: still active, warned of.
	f := filepath.Join(t.TempDir(), "slurm.jwks")
	writeFile(t, f, set(with(k1, "exp", exp.Unix()), k2), 0o600)
	l := listKeys(t, bin, f)
	if len(l.Keys) == 0 || l.Keys[0].KID != kid1 || l.Keys[0].State != "active" {
		t.Errorf("jwk list: an expired signing key: %+v, want %s active", l.Keys, kid1)
	}
	if !slices.ContainsFunc(l.Warnings, func(w string) bool { return strings.Contains(w, kid1) && strings.Contains(w, "expired") }) {
		t.Errorf("jwk list: no warning that the signing key %s expired: %q", kid1, l.Warnings)
	}
}

// TestBadKeyFilesRefused: files real Slurm refuses to load (two
// "use":"default" keys; an "other" permission bit) are refused by jwk add
// with one line naming the file and the fix, and left unchanged; the fix it
// names gives a file real Slurm loads.
func TestBadKeyFilesRefused(t *testing.T) {
	t.Parallel()
	bin := kubectlRotate(t)
	dir := t.TempDir()

	good := filepath.Join(dir, "good", "slurm.jwks")
	writeFile(t, good, charmedSet(newUUID4()), 0o600)
	if err := slurm.CheckKeyFile(t, good); err != nil {
		t.Fatalf("control: slurmd refuses a good key file: %v", err)
	}

	a, b := charmedKey(newUUID4()), charmedKey(newUUID4())
	a["use"], b["use"] = "default", "Default"
	twoDefaults, err := json.Marshal(map[string]any{"keys": []any{a, b}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, slurmSays string
		data            []byte
		mode            os.FileMode
		hint            []string // the message names one of them
		fix             func(t *testing.T, f string)
	}{
		{"two-defaults", "multiple default keys defined", twoDefaults, 0o600, []string{"promote", "remove"}, func(t *testing.T, f string) {
			mustRotate(t, bin, "jwk", "promote", "--file", f, b["kid"].(string))
			var defaults []string
			for _, k := range readKeys(t, f) {
				if use, _ := k["use"].(string); strings.EqualFold(use, "default") {
					defaults = append(defaults, k["kid"].(string))
				}
			}
			if !slices.Equal(defaults, []string{b["kid"].(string)}) {
				t.Errorf("after jwk promote %s: default keys %v, want only it", b["kid"], defaults)
			}
		}},
		{"other-readable", "key file is insecure", charmedSet(newUUID4()), 0o604, []string{"chmod"}, func(t *testing.T, f string) {
			if err := os.Chmod(f, 0o600); err != nil {
				t.Fatal(err)
			}
			mustRotate(t, bin, "jwk", "add", "--file", f)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(dir, tc.name, "slurm.jwks")
			writeFile(t, f, tc.data, tc.mode)
			if err := slurm.CheckKeyFile(t, f); err == nil || !strings.Contains(err.Error(), tc.slurmSays) {
				t.Errorf("%s: real slurmd: %v, want %q", tc.name, err, tc.slurmSays)
			}
			stdout, stderr, err := rotate(bin, "jwk", "add", "--file", f)
			name := tc.name + " (" + tc.slurmSays + "): kubectl-rotate jwk add --file " + f
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Errorf("%s: want a non-zero exit, got %v (stdout %q)", name, err, stdout)
			}
			msg := strings.TrimSpace(stderr)
			if msg == "" || strings.Contains(msg, "\n") {
				t.Errorf("%s: want one line on stderr, got %q", name, msg)
			}
			if !strings.Contains(msg, f) {
				t.Errorf("%s: stderr %q does not name the file", name, msg)
			}
			if rest := strings.ToLower(strings.ReplaceAll(msg, f, "")); !slices.ContainsFunc(tc.hint, func(h string) bool { return strings.Contains(rest, h) }) {
				t.Errorf("%s: stderr %q names no fix (want one of %q)", name, msg, tc.hint)
			}
			got, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.data) {
				t.Errorf("%s: the file changed", name)
			}
			if got := statOf(t, f).mode; got != tc.mode {
				t.Errorf("%s: mode now %o, want %o", name, got, tc.mode)
			}
			if t.Failed() {
				return
			}
			tc.fix(t, f)
			if err := slurm.CheckKeyFile(t, f); err != nil {
				t.Errorf("%s: after the fix, real slurmd: %v", tc.name, err)
			}
		})
	}
}

// checkStep asserts, after a step: the kid jwk list calls active is want
// and is the kid slurmctld signs with (probe, and the launch credential of
// a job), a job runs, and no daemon logged "could not find kid". It stops
// the test after a failed step.
func checkStep(t *testing.T, c *slurm.Cluster, bin, step, want string) {
	t.Helper()
	ctrl := c.ControllerKeyFile()
	list := listKeys(t, bin, ctrl)
	if list.Kind != "KeySet" || list.Store != ctrl || list.Layout != "slurm" {
		t.Errorf("%s: jwk list -o json: kind %q, store %q, layout %q; want KeySet, %s, slurm", step, list.Kind, list.Store, list.Layout, ctrl)
	}
	var active []string
	for _, r := range list.Keys {
		if r.State == "active" {
			active = append(active, r.KID)
		}
	}
	if len(active) != 1 {
		t.Errorf("%s: jwk list calls %d keys active (%v), want one", step, len(active), active)
		active = append(active, "")
	}
	signer, err := c.SignerKID()
	if err != nil {
		t.Errorf("%s: %v", step, err)
	}
	job, jobErr := c.RunJob()
	if active[0] != want {
		t.Errorf("%s: jwk list calls %s active, want %s", step, active[0], want)
	}
	if signer != active[0] {
		t.Errorf("%s: slurmctld signs with %s (probe), jwk list calls %s active", step, signer, active[0])
	}
	if jobErr != nil {
		t.Errorf("%s: %v", step, jobErr)
	} else if job.LaunchKID != signer {
		t.Errorf("%s: the job's launch credential is signed with %s, the probe says %s", step, job.LaunchKID, signer)
	}
	if bad := grepLines(c.Logs(), "could not find kid"); bad != "" {
		t.Errorf("%s: the daemons logged:\n%s", step, bad)
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%s: slurmctld signs with %s = jwk list's active key; job ran in %s", step, signer, job.Duration.Round(time.Millisecond))
}

// reconfigure runs scontrol reconfigure; a failure is reported, and the
// step's checks still run.
func reconfigure(t *testing.T, c *slurm.Cluster, step string) {
	t.Helper()
	if err := c.Reconfigure(); err != nil {
		t.Errorf("%s: %v", step, err)
	}
}

// kubectlRotate returns the kubectl-rotate binary under test, from PATH.
func kubectlRotate(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kubectl-rotate")
	if err != nil {
		t.Fatalf("kubectl-rotate is not on PATH: run `make build` and put bin/ on PATH (`make e2e` does)")
	}
	return p
}

func rotate(bin string, args ...string) (string, string, error) {
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

func mustRotate(t *testing.T, bin string, args ...string) string {
	t.Helper()
	stdout, stderr, err := rotate(bin, args...)
	if err != nil {
		t.Fatalf("kubectl-rotate %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr))
	}
	return stdout
}

// keyList is `jwk list -o json`.
type keyList struct {
	Kind   string `json:"kind"`
	Store  string `json:"store"`
	Layout string `json:"layout"`
	Keys   []row  `json:"keys"`
	// Warnings say what Slurm would make of the set (an expired signing
	// key, for one).
	Warnings []string `json:"warnings"`
}

type row struct {
	KID     string `json:"kid"`
	Kty     string `json:"kty"`
	Alg     string `json:"alg"`
	Use     string `json:"use"`
	State   string `json:"state"`
	Created string `json:"created"`
	Expires string `json:"expires"`
}

func listKeys(t *testing.T, bin, file string) keyList {
	t.Helper()
	out := mustRotate(t, bin, "jwk", "list", "--file", file, "-o", "json")
	var l keyList
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("jwk list --file %s -o json: %v", file, err)
	}
	return l
}

func rowOf(t *testing.T, bin, file, kid string) row {
	t.Helper()
	for _, r := range listKeys(t, bin, file).Keys {
		if r.KID == kid {
			return r
		}
	}
	t.Fatalf("jwk list --file %s: no key %s", file, kid)
	return row{}
}

func stateOf(t *testing.T, bin, file, kid string) string {
	t.Helper()
	return rowOf(t, bin, file, kid).State
}

// readKeys returns the keys of a key file, in order. They hold key
// material: never print them, only their kids.
func readKeys(t *testing.T, file string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&set); err != nil {
		t.Fatalf("%s: not a key set: %v", file, err)
	}
	return set.Keys
}

func writeKeys(t *testing.T, file string, keys []map[string]any) {
	t.Helper()
	data, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func kids(keys []map[string]any) []string {
	var out []string
	for _, k := range keys {
		kid, _ := k["kid"].(string)
		out = append(out, kid)
	}
	return out
}

func maps(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

type fileMeta struct {
	mode     os.FileMode
	uid, gid uint32
}

func statOf(t *testing.T, path string) fileMeta {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fileMeta{fi.Mode().Perm(), st.Uid, st.Gid}
}

func checkMeta(t *testing.T, path string, want fileMeta, cmd string) {
	t.Helper()
	if got := statOf(t, path); got != want {
		t.Errorf("%s: the file is now mode %o, owner %d:%d; was %o, %d:%d", cmd, got.mode, got.uid, got.gid, want.mode, want.uid, want.gid)
	}
}

func writeFile(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// charmedKey is a key as Charmed HPC writes it: a uuid4 kid and 2048 random
// bytes in padded standard base64.
func charmedKey(kid string) map[string]any {
	return map[string]any{"alg": "HS256", "kty": "oct", "kid": kid, "k": randomB64(2048)}
}

// charmedSet is a one-key slurm.jwks as Charmed HPC writes it.
func charmedSet(kid string) []byte {
	type key struct {
		Alg string `json:"alg"`
		Kty string `json:"kty"`
		Kid string `json:"kid"`
		K   string `json:"k"`
	}
	data, err := json.Marshal(struct {
		Keys []key `json:"keys"`
	}{[]key{{"HS256", "oct", kid, randomB64(2048)}}})
	if err != nil {
		panic(err)
	}
	return data
}

// schedMDSet is a slurm.jwks as SchedMD's documentation shows it: two
// free-text kids, the second one the default key, an exp on the first, and
// (here) a lowercase alg on the default key, which Slurm accepts.
func schedMDSet(exp int64) []byte {
	return fmt.Appendf(nil, `{
  "keys": [
    {
      "alg": "HS256",
      "kty": "oct",
      "kid": "key-identifier",
      "k": %q,
      "exp": %d
    },
    {
      "alg": "hs256",
      "kty": "oct",
      "kid": "key-identifier-2",
      "k": %q,
      "use": "default"
    }
  ]
}
`, randomB64(32), exp, randomB64(32))
}

func randomB64(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func newUUID4() string {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		panic(err)
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func firstLine(s string) string { return strings.SplitN(s, "\n", 2)[0] }

// hostMountsUnder returns the host's mount points under dir.
func hostMountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			out = append(out, f[4])
		}
	}
	return out
}
