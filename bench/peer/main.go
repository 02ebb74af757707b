// Command peer is the benchmark's Go peer: an external provisioner on
// sigs.k8s.io/sig-storage-lib-external-provisioner, the library most Go provisioners are built on,
// answering claims of flashvol's classes with PVs of flashvol's shape (a pure/flex flexVolume
// with the same options) and no array I/O. bench/run.sh runs it against the same control plane
// as flashvol-provisioner, so the two are compared in one run. It is a measuring instrument, not
// a product: it never talks to an array.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"
)

// flags holds the command line; defaults are the library's and client-go's own.
type flags struct {
	kubeconfig    string
	provisioner   string
	driver        string
	prefix        string
	arrayEndpoint string
	arrayID       string
	qps           float64
	burst         int
	threadiness   int
}

func parseFlags() flags {
	var f flags
	flag.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (required)")
	flag.StringVar(&f.provisioner, "provisioner", "pure-provisioner", "provisioner name claims ask for")
	flag.StringVar(&f.driver, "driver", "pure/flex", "flexVolume driver of the PVs")
	flag.StringVar(&f.prefix, "prefix", "k8s", "array name prefix written into the PV options")
	flag.StringVar(&f.arrayEndpoint, "array-endpoint", "127.0.0.1", "arrayEndpoint written into the PV options")
	flag.StringVar(&f.arrayID, "array-id", "peer", "arrayId written into the PV options")
	flag.Float64Var(&f.qps, "kube-api-qps", 5, "client QPS (client-go default 5)")
	flag.IntVar(&f.burst, "kube-api-burst", 10, "client burst (client-go default 10)")
	flag.IntVar(&f.threadiness, "threadiness", controller.DefaultThreadiness, "claim and volume workers")
	klog.InitFlags(nil)
	flag.Parse()
	if f.kubeconfig == "" {
		fmt.Fprintln(os.Stderr, "peer: --kubeconfig is required")
		os.Exit(2)
	}
	if f.qps <= 0 || f.burst <= 0 || f.threadiness <= 0 {
		fmt.Fprintln(os.Stderr, "peer: --kube-api-qps, --kube-api-burst and --threadiness must be positive")
		os.Exit(2)
	}
	return f
}

// flexProvisioner builds flashvol-shaped PVs without touching an array.
type flexProvisioner struct{ f flags }

func (p *flexProvisioner) Provision(_ context.Context, o controller.ProvisionOptions) (*v1.PersistentVolume, controller.ProvisioningState, error) {
	request := o.PVC.Spec.Resources.Requests[v1.ResourceStorage]
	if request.IsZero() {
		return nil, controller.ProvisioningFinished, fmt.Errorf("claim %s/%s requests no storage", o.PVC.Namespace, o.PVC.Name)
	}
	backend := o.StorageClass.Parameters["backend"]
	if backend == "" {
		backend = "block"
	}
	fsType := "nfs"
	if backend == "block" {
		fsType = o.StorageClass.Parameters["fsType"]
		if fsType == "" {
			fsType = "xfs"
		}
	}
	shared := "exclusive"
	for _, mode := range o.PVC.Spec.AccessModes {
		if mode == v1.ReadWriteMany {
			shared = "shared"
		}
	}
	reclaim := v1.PersistentVolumeReclaimDelete
	if o.StorageClass.ReclaimPolicy != nil {
		reclaim = *o.StorageClass.ReclaimPolicy
	}
	return &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: o.PVName},
		Spec: v1.PersistentVolumeSpec{
			AccessModes:                   o.PVC.Spec.AccessModes,
			Capacity:                      v1.ResourceList{v1.ResourceStorage: *resource.NewQuantity(request.Value(), resource.BinarySI)},
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              o.StorageClass.Name,
			VolumeMode:                    volumeMode(v1.PersistentVolumeFilesystem),
			PersistentVolumeSource: v1.PersistentVolumeSource{FlexVolume: &v1.FlexPersistentVolumeSource{
				Driver: p.f.driver,
				FSType: fsType,
				Options: map[string]string{
					"backend":       backend,
					"namespace":     p.f.prefix,
					"volumeName":    o.PVName,
					"accessMode":    shared,
					"labels":        "",
					"volumeMode":    "Filesystem",
					"arrayVolume":   p.f.prefix + "-" + o.PVName,
					"arrayEndpoint": p.f.arrayEndpoint,
					"arrayId":       p.f.arrayID,
				},
			}},
		},
	}, controller.ProvisioningFinished, nil
}

// Delete has no array object to destroy; the library then deletes the PV.
func (p *flexProvisioner) Delete(context.Context, *v1.PersistentVolume) error { return nil }

func volumeMode(m v1.PersistentVolumeMode) *v1.PersistentVolumeMode { return &m }

func main() {
	f := parseFlags()
	config, err := clientcmd.BuildConfigFromFlags("", f.kubeconfig)
	if err != nil {
		fmt.Fprintf(os.Stderr, "peer: kubeconfig %s: %v\n", f.kubeconfig, err)
		os.Exit(1)
	}
	config.QPS, config.Burst = float32(f.qps), f.burst
	config.UserAgent = "flashvol-bench-peer"
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		fmt.Fprintf(os.Stderr, "peer: client: %v\n", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	klog.FromContext(ctx).Info("peer starting", "provisioner", f.provisioner, "qps", f.qps,
		"burst", f.burst, "threadiness", f.threadiness, "args", strings.Join(os.Args[1:], " "))
	controller.NewProvisionController(ctx, client, f.provisioner, &flexProvisioner{f},
		controller.LeaderElection(false),
		controller.Threadiness(f.threadiness),
		controller.AddFinalizer(true),
	).Run(ctx)
}
