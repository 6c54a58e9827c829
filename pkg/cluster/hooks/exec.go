package hooks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// outputGrace is how long Run still reads output after the hook's process
// group was killed: only a process that left the group can hold the pipe
// open longer.
var outputGrace = 2 * time.Second

// Exec runs a local command as a hook. There is no shell: Command is the
// argv as given. The values reach the command only as JSON (see Values):
//
//	{"secret":..,"namespace":..,"item":..,"step":..,"rotationId":..,
//	 "pending":{"KEY":"value"},"current":{...}}
//
// with values that are not valid UTF-8 as base64 under "pendingBase64" and
// "currentBase64". The command runs in its own process group, which is
// killed when it exits, times out or ctx is canceled, so it leaves no
// children behind (a child that starts its own session escapes this).
type Exec struct {
	Command []string
	// Values is "file" (default): the JSON is in a 0600 file, in a 0700
	// directory, whose path is in $KUBE_ROTATE_VALUES_FILE and which is
	// removed when the hook ends; or "stdin": the JSON is on stdin.
	Values string
	// Env are plain settings added to the inherited environment. valueFrom
	// is not supported.
	Env []corev1.EnvVar
	// Timeout bounds the run; 0 means DefaultTimeout.
	Timeout    time.Duration
	WorkingDir string
}

// Run runs the command and waits for it. A non-zero exit, a timeout or a
// canceled ctx is an error of one line; the Result is filled in any case.
func (h *Exec) Run(ctx context.Context, v Values) (Result, error) {
	res := Result{Step: v.Step, Kind: KindExec, ExitCode: -1}
	what := v.what()
	if len(h.Command) == 0 || h.Command[0] == "" {
		return res, fmt.Errorf("%s has no command: set the hook's command (argv, no shell)", what)
	}
	mode := h.Values
	if mode == "" {
		mode = ValuesFile
	}
	if mode != ValuesFile && mode != ValuesStdin {
		return res, fmt.Errorf("%s: values %q is not supported: use %q or %q", what, h.Values, ValuesFile, ValuesStdin)
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("%s was not started: %w", what, err)
	}
	doc, err := v.document()
	if err != nil {
		return res, err
	}
	env, err := h.environ(v)
	if err != nil {
		return res, err
	}
	red := newRedactor(v.secrets())

	cmd := exec.Command(h.Command[0], h.Command[1:]...)
	cmd.Dir = h.WorkingDir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}

	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			_ = c.Close()
		}
	}()
	outR, outW, err := os.Pipe()
	if err != nil {
		return res, fmt.Errorf("%s: creating its output pipe: %w", what, err)
	}
	closers = append(closers, outR, outW)
	cmd.Stdout, cmd.Stderr = outW, outW

	var inW *os.File
	switch mode {
	case ValuesStdin:
		var inR *os.File
		if inR, inW, err = os.Pipe(); err != nil {
			return res, fmt.Errorf("%s: creating its stdin pipe: %w", what, err)
		}
		closers = append(closers, inR, inW)
		cmd.Stdin = inR
	case ValuesFile:
		dir, err := os.MkdirTemp("", "kube-rotate-hook-")
		if err != nil {
			return res, fmt.Errorf("%s: creating a private directory for its values file: %w", what, err)
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "values.json")
		if err := os.WriteFile(path, doc, 0o600); err != nil {
			return res, fmt.Errorf("%s: writing its values file in %s failed: check free space and permissions of $TMPDIR", what, dir)
		}
		env = append(env, EnvValuesFile+"="+path)
	}
	cmd.Env = env

	res.Started = time.Now()
	if err := cmd.Start(); err != nil {
		res.Finished = time.Now()
		return res, fmt.Errorf("%s: cannot start %s: %v: check the command path and that it is executable", what, h.Command[0], err)
	}
	pgid := cmd.Process.Pid
	// Only the child holds these ends now: its exit closes them.
	_ = outW.Close()
	if r, ok := cmd.Stdin.(*os.File); ok {
		_ = r.Close()
	}

	if inW != nil {
		go func() {
			_, _ = inW.Write(doc)
			_ = inW.Close()
		}()
	}
	tail := red.newTail(OutputLimit)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		_, _ = io.Copy(tail, outR)
	}()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var stopped error // why the hook was killed, if it was
	select {
	case <-waited:
	case <-tctx.Done():
		stopped = tctx.Err()
		if ctx.Err() != nil {
			stopped = ctx.Err()
		}
		killGroup(pgid)
		<-waited
	}
	res.Finished = time.Now()
	// Whatever the hook left running in its group goes too.
	killGroup(pgid)
	if inW != nil {
		_ = inW.Close()
	}
	select {
	case <-readDone:
	case <-time.After(outputGrace):
		_ = outR.Close()
		<-readDone
	}
	b, truncated := tail.bytes()
	res.Output = red.tail(b, truncated, OutputLimit)
	res.ExitCode = cmd.ProcessState.ExitCode()
	last := lastLine(res.Output)

	switch {
	case errors.Is(stopped, context.DeadlineExceeded) && ctx.Err() == nil:
		return res, fmt.Errorf("%s timed out after %s: killed its process group; last output: %s: make the hook finish sooner or raise its timeout", what, shortDuration(timeout), last)
	case stopped != nil:
		return res, fmt.Errorf("%s was stopped (%v): killed its process group; last output: %s", what, stopped, last)
	case res.ExitCode != 0:
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return res, fmt.Errorf("%s was killed by signal %s: %s", what, ws.Signal(), last)
		}
		return res, fmt.Errorf("%s exited %d: %s", what, res.ExitCode, last)
	}
	return res, nil
}

// killGroup kills the process group pgid. An empty group is no error.
func killGroup(pgid int) {
	if pgid > 0 {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}

// environ is the parent's environment with Env and the KUBE_ROTATE_*
// settings; those replace any inherited ones.
func (h *Exec) environ(v Values) ([]string, error) {
	ours := map[string]bool{EnvValuesFile: true}
	for _, kv := range v.env() {
		ours[kv[0]] = true
	}
	var env []string
	for _, e := range os.Environ() {
		name, _, _ := strings.Cut(e, "=")
		if !ours[name] {
			env = append(env, e)
		}
	}
	for _, e := range h.Env {
		if e.ValueFrom != nil {
			return nil, fmt.Errorf("%s: env %s uses valueFrom, which exec hooks do not support: give a plain value (values reach the hook as JSON)", v.what(), e.Name)
		}
		if e.Name == "" || strings.ContainsAny(e.Name, "=\x00") {
			return nil, fmt.Errorf("%s: env name %q is not valid", v.what(), e.Name)
		}
		env = append(env, e.Name+"="+e.Value)
	}
	for _, kv := range v.env() {
		env = append(env, kv[0]+"="+kv[1])
	}
	return env, nil
}
