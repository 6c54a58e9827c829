// Command cluster starts and stops the project's local Kubernetes control
// plane (see package e2e/cluster).
//
//	cluster up            build if needed, start, print KUBECONFIG=... last
//	cluster env           print KUBECONFIG=... of the running cluster
//	cluster down          stop exactly the processes `up` started
//	cluster build         only build the binaries into the cache
//	cluster kops          build the real kops CLI if needed, print KOPS=...
//	cluster eso           build the real External Secrets Operator controller
//	                      and its CRD bundle if needed, print ESO=... and
//	                      ESO_CRDS=...
//	cluster images        build the real-node test images, one archive each,
//	                      print IMAGES=PATH PATH
//	cluster run -- CMD    start a cluster tied to this process, run CMD with
//	                      KUBECONFIG set, stop the cluster whatever happens
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kube-rotate/kube-rotate/e2e/cluster"
	"github.com/kube-rotate/kube-rotate/e2e/eso"
	"github.com/kube-rotate/kube-rotate/e2e/images"
)

func init() {
	// Components started with Pdeathsig die when the OS thread that started
	// them exits; keep main's goroutine on one thread for the process's life.
	runtime.LockOSThread()
}

func main() {
	os.Exit(run())
}

func run() int {
	var o cluster.Options
	var kubernetes, kwok string
	root := &cobra.Command{
		Use:           "cluster",
		Short:         "Run kube-rotate's local Kubernetes control plane (etcd, apiserver, controller-manager, scheduler, kwok)",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	def := cluster.DefaultVersions()
	root.PersistentFlags().StringVar(&o.StateDir, "state-dir", cluster.DefaultStateDir("local"), "Directory holding the cluster's state, kubeconfig and logs.")
	root.PersistentFlags().StringVar(&o.CacheDir, "cache-dir", "", "Directory of cached binaries (default $KUBE_ROTATE_CACHE or ~/.cache/kube-rotate).")
	root.PersistentFlags().StringVar(&kubernetes, "kubernetes-version", def.Kubernetes, "k8s.io/kubernetes version to build and run.")
	root.PersistentFlags().StringVar(&kwok, "kwok-version", def.Kwok, "sigs.k8s.io/kwok version to build and run.")
	root.PersistentFlags().IntVar(&o.Nodes, "nodes", 2, "Number of kwok fake nodes.")
	root.PersistentFlags().IntVar(&o.APIServerPort, "apiserver-port", 0, "API server port on 127.0.0.1 (0 picks a free port).")
	root.PersistentFlags().IntVar(&o.EtcdPort, "etcd-port", 0, "etcd client port on 127.0.0.1 (0 picks a free port).")
	root.PersistentFlags().StringVar(&o.EncryptionConfig, "encryption-config", "", "EncryptionConfiguration file kube-apiserver encrypts with (--encryption-provider-config, reloaded when it changes); empty: no encryption at rest.")
	root.PersistentFlags().BoolVar(&o.RealNode, "real-node", false, "Also start a real node (kubelet, containerd, runc; needs root and Debian's containerd, runc and containernetworking-plugins). Where it cannot start, say why in one line and go on with kwok nodes only.")
	root.PersistentPreRun = func(*cobra.Command, []string) {
		o.Versions = cluster.Versions{Kubernetes: kubernetes, Kwok: kwok}
		o.Log = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	root.AddCommand(&cobra.Command{
		Use:   "up",
		Short: "Start the cluster (building binaries on first use) and print KUBECONFIG=<path> as the last line",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cluster.Up(ctx, o)
			if err != nil {
				return err
			}
			fmt.Printf("KUBECONFIG=%s\n", c.Kubeconfig)
			return nil
		},
	}, &cobra.Command{
		Use:   "env",
		Short: "Print KUBECONFIG=<path> of the running cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cluster.Load(o.StateDir)
			if err != nil {
				return err
			}
			if err := c.Healthy(ctx); err != nil {
				return fmt.Errorf("the cluster in %s is not healthy (%v): restart it with `make cluster-down cluster-up`", c.StateDir, err)
			}
			fmt.Printf("KUBECONFIG=%s\n", c.Kubeconfig)
			return nil
		},
	}, &cobra.Command{
		Use:   "down",
		Short: "Stop the processes the cluster started and remove its state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cluster.Down(o.StateDir)
		},
	}, &cobra.Command{
		Use:   "build",
		Short: "Build the control-plane binaries into the cache if missing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := cacheDir(o)
			if err != nil {
				return err
			}
			bins, err := cluster.EnsureBinaries(ctx, dir, o.Versions, os.Stderr)
			if err != nil {
				return err
			}
			fmt.Printf("KUBECTL=%s\n", bins.Kubectl)
			return nil
		},
	})
	root.AddCommand(&cobra.Command{
		Use:   "kops",
		Short: "Build the real kops CLI (for interop tests) into the cache if missing; print KOPS=<path>",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := cacheDir(o)
			if err != nil {
				return err
			}
			bin, err := cluster.EnsureKops(ctx, dir, cluster.DefaultKopsVersion, os.Stderr)
			if err != nil {
				return err
			}
			fmt.Printf("KOPS=%s\n", bin)
			return nil
		},
	})
	root.AddCommand(&cobra.Command{
		Use:   "eso",
		Short: "Build the real External Secrets Operator " + eso.DefaultVersion + " controller and CRD bundle into the cache if missing; print ESO=<path> and ESO_CRDS=<path>",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := cacheDir(o)
			if err != nil {
				return err
			}
			b, err := eso.Ensure(ctx, dir, eso.DefaultVersion, os.Stderr)
			if err != nil {
				return err
			}
			fmt.Printf("ESO=%s\nESO_CRDS=%s\n", b.Controller, b.CRDs)
			return nil
		},
	})
	root.AddCommand(&cobra.Command{
		Use:   "images",
		Short: "Build the real-node test images (pause, testapp) offline, one image archive each; print IMAGES=<path> <path> (for `kind load image-archive`)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			root, err := images.RepoRoot()
			if err != nil {
				return err
			}
			dir, err := cacheDir(o)
			if err != nil {
				return err
			}
			paths, err := images.Build(ctx, root, filepath.Join(dir, "images"), images.All)
			if err != nil {
				return err
			}
			fmt.Printf("IMAGES=%s\n", strings.Join(paths, " "))
			return nil
		},
	})
	var exitCode int
	root.AddCommand(&cobra.Command{
		Use:   "run -- COMMAND [ARGS...]",
		Short: "Start a cluster tied to this process, run COMMAND with KUBECONFIG set, then stop the cluster",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Attached = true
			c, err := cluster.Up(ctx, o)
			if err != nil {
				return err
			}
			defer func() {
				if err := c.Down(); err != nil {
					fmt.Fprintf(os.Stderr, "stopping the cluster: %v\n", err)
				}
			}()
			fmt.Fprintf(os.Stderr, "KUBECONFIG=%s\n", c.Kubeconfig)
			child := exec.Command(args[0], args[1:]...)
			child.Stdin, child.Stdout, child.Stderr = os.Stdin, os.Stdout, os.Stderr
			child.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig)
			if _, err := c.RealNode(); err != nil && o.RealNode {
				// The real-pod tests skip with this reason (or fail with
				// E2E_REAL_NODE=required).
				child.Env = append(child.Env, "E2E_REAL_NODE_UNAVAILABLE="+err.Error())
			}
			// The command dies with this process too: nothing outlives a killed run.
			child.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
			if err := child.Start(); err != nil {
				return fmt.Errorf("starting %s: %w", args[0], err)
			}
			done := make(chan error, 1)
			go func() { done <- child.Wait() }()
			select {
			case err = <-done:
			case <-ctx.Done():
				_ = child.Process.Signal(syscall.SIGTERM)
				err = <-done
			}
			var ee *exec.ExitError
			switch {
			case errors.As(err, &ee):
				exitCode = ee.ExitCode()
				if exitCode < 0 {
					exitCode = 1
				}
			case err != nil:
				return err
			}
			return nil
		},
	})
	if err := root.Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 1
	}
	return exitCode
}

// cacheDir is --cache-dir, else the default binary cache.
func cacheDir(o cluster.Options) (string, error) {
	if o.CacheDir != "" {
		return o.CacheDir, nil
	}
	return cluster.DefaultCacheDir()
}
