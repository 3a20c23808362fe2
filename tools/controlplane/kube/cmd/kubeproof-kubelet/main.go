// kubeproof-kubelet runs the upstream kubelet as a node of the embedded cluster, without a container
// runtime, images or host cgroups. Everything the CIS worker-node controls are about is the
// kubelet's own code: its configuration loader and validation, its HTTPS server, authentication
// (client certificates, TokenReview, anonymous), authorization (SubjectAccessReview or AlwaysAllow),
// /configz, /flagz, the read-only port, registration and heartbeats. Only what sits below the
// kubelet is a stand-in: kubemark's fake CRI runtime (served on the configured runtime endpoint and
// reached through the kubelet's real CRI client), a fake cAdvisor, a stub container manager, a fake
// mounter and prober. The prober is fake on purpose: every fake pod has the same made-up IP, and a
// real prober would send traffic to it.
//
// Usage: kubeproof-kubelet --config FILE --kubeconfig FILE --hostname-override NAME --node-ip IP
// (any kubelet flag is accepted; the configuration file is required).
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"
	noopoteltrace "go.opentelemetry.io/otel/trace/noop"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/flagz"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/tools/record"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	_ "k8s.io/component-base/logs/json/register"
	"k8s.io/component-base/version/verflag"
	fakeremote "k8s.io/cri-client/pkg/fake"
	"k8s.io/klog/v2"
	kubeletapp "k8s.io/kubernetes/cmd/kubelet/app"
	"k8s.io/kubernetes/cmd/kubelet/app/options"
	"k8s.io/kubernetes/pkg/kubelet"
	kubeletconfig "k8s.io/kubernetes/pkg/kubelet/apis/config"
	kubeletconfigvalidation "k8s.io/kubernetes/pkg/kubelet/apis/config/validation"
	cadvisortest "k8s.io/kubernetes/pkg/kubelet/cadvisor/testing"
	"k8s.io/kubernetes/pkg/kubelet/cm"
	containertest "k8s.io/kubernetes/pkg/kubelet/container/testing"
	"k8s.io/kubernetes/pkg/kubelet/eviction"
	"k8s.io/kubernetes/pkg/kubelet/kubeletconfig/configfiles"
	probetest "k8s.io/kubernetes/pkg/kubelet/prober/testing"
	kubeletutil "k8s.io/kubernetes/pkg/kubelet/util"
	utilfs "k8s.io/kubernetes/pkg/util/filesystem"
	"k8s.io/kubernetes/pkg/util/oom"
	"k8s.io/kubernetes/pkg/volume"
	"k8s.io/kubernetes/pkg/volume/configmap"
	"k8s.io/kubernetes/pkg/volume/downwardapi"
	"k8s.io/kubernetes/pkg/volume/emptydir"
	"k8s.io/kubernetes/pkg/volume/hostpath"
	"k8s.io/kubernetes/pkg/volume/projected"
	"k8s.io/kubernetes/pkg/volume/secret"
	"k8s.io/kubernetes/pkg/volume/util/hostutil"
	"k8s.io/kubernetes/pkg/volume/util/subpath"
	"k8s.io/mount-utils"
)

// Fake images report this size; an image of size 0 fails the pod with ImageInspectError.
const fakeImageSize = 10 << 20

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "kubeproof-kubelet: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	fs := pflag.NewFlagSet("kubelet", pflag.ContinueOnError)
	fs.SetNormalizeFunc(cliflag.WordSepNormalizeFunc)
	flags := options.NewKubeletFlags()
	flags.AddFlags(fs)
	// Configuration flags parse here too (and show in /flagz); they are applied over the file below.
	defaults, err := options.NewKubeletConfiguration()
	if err != nil {
		return err
	}
	options.AddKubeletConfigFlags(fs, defaults)
	options.AddGlobalFlags(fs)
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	verflag.PrintAndExitIfRequested()
	if err := options.ValidateKubeletFlags(flags); err != nil {
		return fmt.Errorf("kubelet flags: %w", err)
	}
	if flags.KubeletConfigFile == "" {
		return fmt.Errorf("--config is required: the node's settings come from a KubeletConfiguration file")
	}
	ctx := genericapiserver.SetupSignalContext()

	// The kubelet's own loader and defaulting, as `kubelet --config` does.
	path, err := filepath.Abs(flags.KubeletConfigFile)
	if err != nil {
		return err
	}
	loader, err := configfiles.NewFsLoader(&utilfs.DefaultFs{}, path)
	if err != nil {
		return err
	}
	config, err := loader.Load(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if config.EvictionHard == nil {
		config.EvictionHard = eviction.DefaultEvictionHard
	}
	if err := flagPrecedence(config, os.Args[1:]); err != nil {
		return err
	}
	if err := utilfeature.DefaultMutableFeatureGate.SetFromMap(config.FeatureGates); err != nil {
		return err
	}
	logs.InitLogs()
	if err := logsapi.ValidateAndApplyAsField(&config.Logging, utilfeature.DefaultFeatureGate, nil); err != nil {
		return fmt.Errorf("logging: %w", err)
	}
	if err := kubeletconfigvalidation.ValidateKubeletConfiguration(config, utilfeature.DefaultFeatureGate); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	server := &options.KubeletServer{KubeletFlags: *flags, KubeletConfiguration: *config}

	// The fake runtime listens where the configuration says the runtime is; the kubelet dials it
	// through its real CRI client.
	runtime := fakeremote.NewFakeRemoteRuntime()
	runtime.ImageService.SetFakeImageSize(fakeImageSize)
	if err := runtime.Start(config.ContainerRuntimeEndpoint); err != nil {
		return fmt.Errorf("fake runtime on %s: %w", config.ContainerRuntimeEndpoint, err)
	}
	defer runtime.Stop()

	tlsOptions, err := kubeletapp.InitializeTLS(ctx, &server.KubeletFlags, &server.KubeletConfiguration)
	if err != nil {
		return err
	}
	deps := &kubelet.Dependencies{
		TLSOptions:                tlsOptions,
		CAdvisorInterface:         &cadvisortest.Fake{NodeName: flags.HostnameOverride},
		ContainerManager:          cm.NewStubContainerManager(),
		Mounter:                   &mount.FakeMounter{},
		Subpather:                 &subpath.FakeSubpath{},
		HostUtil:                  hostutil.NewFakeHostUtil(nil),
		OSInterface:               &containertest.FakeOS{},
		OOMAdjuster:               oom.NewFakeOOMAdjuster(),
		ProbeManager:              probetest.FakeManager{},
		VolumePlugins:             volumePlugins(),
		TracerProvider:            noopoteltrace.NewTracerProvider(),
		PodStartupLatencyTracker:  kubeletutil.NewPodStartupLatencyTracker(),
		NodeStartupLatencyTracker: kubeletutil.NewNodeStartupLatencyTracker(klog.FromContext(ctx)),
		// As the kubelet command does: /flagz shows the command line (authorized as nodes/configz).
		Flagz: flagz.NamedFlagSetsReader{FlagSets: cliflag.NamedFlagSets{FlagSets: map[string]*pflag.FlagSet{"kubelet": fs}}},
	}
	// The real event recorder watches /dev/kmsg for OOM kills; a user who cannot read it gets a
	// recorder that drops events instead of a kubelet that will not start.
	if kmsg, err := os.Open("/dev/kmsg"); err == nil {
		kmsg.Close()
	} else {
		deps.Recorder = &record.FakeRecorder{}
	}
	// Authentication, authorization, API clients, certificate rotation, configz and the server are
	// left to the kubelet's own run path.
	return kubeletapp.Run(ctx, server, deps, utilfeature.DefaultFeatureGate)
}

// flagPrecedence applies configuration flags over the loaded file, as the kubelet does: a flag given
// on the command line wins over the file (and is not defaulted away).
func flagPrecedence(config *kubeletconfig.KubeletConfiguration, args []string) error {
	fs := pflag.NewFlagSet("kubelet", pflag.ContinueOnError)
	fs.SetNormalizeFunc(cliflag.WordSepNormalizeFunc)
	global := pflag.NewFlagSet("", pflag.ContinueOnError)
	options.AddGlobalFlags(global)
	options.NewKubeletFlags().AddFlags(global)
	global.VisitAll(func(f *pflag.Flag) { fs.VarP(cliflag.NoOp{}, f.Name, f.Shorthand, f.Usage) })
	gates := config.FeatureGates
	options.AddKubeletConfigFlags(fs, config)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return err
	}
	for name, value := range gates {
		if _, set := config.FeatureGates[name]; !set {
			config.FeatureGates[name] = value
		}
	}
	return nil
}

func volumePlugins() []volume.VolumePlugin {
	var plugins []volume.VolumePlugin
	plugins = append(plugins, emptydir.ProbeVolumePlugins()...)
	plugins = append(plugins, hostpath.FakeProbeVolumePlugins(volume.VolumeConfig{})...)
	plugins = append(plugins, secret.ProbeVolumePlugins()...)
	plugins = append(plugins, downwardapi.ProbeVolumePlugins()...)
	plugins = append(plugins, configmap.ProbeVolumePlugins()...)
	plugins = append(plugins, projected.ProbeVolumePlugins()...)
	return plugins
}
