// Command llmproxy is a self-hosted, privacy-focused proxy for LLM APIs.
//
//	llmproxy [serve] [flags]   run the proxy (the default command)
//	llmproxy presets           print the preset table
//	llmproxy version           print the version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/privacy"
	"github.com/llmproxy/llmproxy/redisstate"
	"github.com/llmproxy/llmproxy/server"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK       = 0
	exitFailure  = 1 // e.g. the listen address is taken
	exitSettings = 2 // a bad flag, variable or config value
)

// usageError marks command-line mistakes, which exit with status 2.
type usageError struct{ error }

// run is main without the process: tests call it with their own arguments,
// output and context.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := &cli.App{
		Name:            "llmproxy",
		Usage:           "a self-hosted, privacy-focused proxy for LLM APIs",
		Version:         versionString(),
		Writer:          stdout,
		ErrWriter:       stderr,
		Flags:           serveFlags(),
		Action:          serve,
		HideHelpCommand: true,
		ExitErrHandler:  func(*cli.Context, error) {}, // run decides the exit status
		OnUsageError:    onUsageError,
		Commands: []*cli.Command{
			{
				Name:   "serve",
				Usage:  "run the proxy (the default)",
				Flags:  serveFlags(),
				Action: serve,
			},
			{
				Name:   "presets",
				Usage:  "print the preset table: paths, the base URL --preset NAME=URL replaces, the SDK base URL through llmproxy",
				Flags:  serveFlags(),
				Action: printPresets,
			},
			{
				Name:      "check",
				Usage:     "validate the configuration without serving; with a preset or a gateway model, show which headers of a sample request would reach the upstream",
				ArgsUsage: "[PRESET | MODEL]",
				Flags:     serveFlags(),
				Action:    check,
			},
			{
				Name:  "health",
				Usage: "ask a running llmproxy for /health; exit 0 when it answers ok (a container health check without a shell)",
				Flags: append(serveFlags(),
					&cli.StringFlag{Name: "url", Usage: "the `URL` to ask (default: /health on the --listen address)"},
					&cli.DurationFlag{Name: "timeout", Value: 5 * time.Second, Usage: "how long to wait"}),
				Action: health,
			},
			{
				Name:  "export",
				Usage: "print the admin store's providers, models and client keys as YAML that --config accepts",
				Flags: append(serveFlags(),
					&boolFlag{&cli.BoolFlag{Name: "with-secrets", Usage: "include provider keys saved as literals (keep the output safe)"}}),
				Action: exportStore,
			},
			{
				Name:      "import",
				Usage:     "load a YAML file (the --config format) into the admin store, as one change",
				ArgsUsage: "FILE",
				Flags:     serveFlags(),
				Action:    importStore,
			},
			{
				Name:      "completion",
				Usage:     "print a shell completion script: llmproxy completion bash|zsh|fish",
				ArgsUsage: "bash|zsh|fish",
				Action:    completion,
			},
			{
				Name:  "version",
				Usage: "print the version, the commit it was built from and the Go version",
				Action: func(c *cli.Context) error {
					fmt.Fprint(c.App.Writer, versionLines())
					return nil
				},
			},
		},
	}
	// Every command: a bad flag or value is one line and exit 2, not
	// urfave/cli's "Incorrect Usage" with the whole help and exit 1.
	for _, cmd := range app.Commands {
		cmd.OnUsageError = onUsageError
	}
	err := app.RunContext(ctx, args)
	if err == nil {
		return exitOK
	}
	var se *config.SettingError
	var ue usageError
	switch {
	case errors.As(err, &se):
		fmt.Fprintf(stderr, "llmproxy: bad setting %s: %s\n", describe(se.Setting), se.Msg)
		return exitSettings
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "llmproxy: %v\n", ue.error)
		return exitSettings
	}
	fmt.Fprintf(stderr, "llmproxy: %v\n", err)
	return exitFailure
}

// onUsageError makes urfave/cli's errors for the command line (a flag
// not defined, a value it cannot parse) usage errors: one line, exit 2.
func onUsageError(_ *cli.Context, err error, _ bool) error {
	return usageError{err}
}

func serve(c *cli.Context) error {
	if c.Args().Present() {
		return usageError{fmt.Errorf("unexpected argument %q (commands: serve, presets, version)", c.Args().First())}
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	defer tuneGC(minHeapGoal)()
	defer tuneProcs(procsWindow, procsSettle)()
	redactor := privacy.NewRedactor(cfg.AuthToken)
	sink := newLogSink(c.App.ErrWriter)
	defer sink.Flush()
	logger := newLogger(sink, cfg.LogFormat, cfg.Debug, redactor, isTerminal(c.App.ErrWriter))

	// Every configuration build: the file, the flags, the seed variables,
	// and the admin store's entries when there is a store.
	var srv *server.Server
	pnl, err := newPanel(c.Context, cfg, func() (*config.Config, error) { return loadConfig(c) }, &srv, logger)
	if err != nil {
		return err
	}
	defer pnl.close()
	opts := server.Options{Logger: logger, Version: versionString()}
	build := func() (*config.Config, error) { return loadConfig(c) }
	var storeRev int64
	if pnl != nil {
		// The revision first, then the entries: the watch below starts
		// from it and misses no change made in between.
		if storeRev, err = pnl.st.Revision(c.Context); err != nil {
			return fmt.Errorf("reading the admin store: %w", err)
		}
		if cfg, err = withStore(c.Context, cfg, pnl.st, logger); err != nil {
			return err
		}
		opts.Limiter, opts.OnUsage = pnl.limiter, pnl.record
		if pnl.handler != nil {
			opts.Admin = pnl.handler
		}
		build = func() (*config.Config, error) {
			fileCfg, err := loadConfig(c)
			if err != nil {
				return nil, err
			}
			return withStore(c.Context, fileCfg, pnl.st, logger)
		}
	}
	// Several replicas share client-key limits, key health, breakers and
	// balancing through Redis; without it everything stays in memory.
	var shared *redisstate.Shared
	if cfg.RedisURL != "" {
		shared, err = redisstate.New(c.Context, redisstate.Options{
			URL: cfg.RedisURL, FailClosed: cfg.RedisFail == "closed", SlotTTL: cfg.RedisSlotTTL, Logger: logger,
		})
		if err != nil {
			return &config.SettingError{Setting: "redis_url", Msg: err.Error()}
		}
		defer shared.Close() // after Serve has drained
		var local *access.Local
		if pnl != nil {
			local = pnl.limiter
		}
		opts.Limiter = shared.Limiter(local)
		opts.Status = shared.Status
		opts.Collectors = append(opts.Collectors, shared.Collector())
	}
	if srv, err = server.New(cfg, opts); err != nil {
		return err
	}
	if shared != nil {
		shared.ShareHealth(srv.Health()) // before serving: a late joiner starts from the others' state
	}
	if pnl != nil {
		pnl.restoreBudgets(c.Context, srv.Snapshot(), logger)
		watchCtx, stopWatch := context.WithCancel(c.Context)
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			pnl.watch(watchCtx, storeRev, srv, build, logger)
		}()
		defer func() { stopWatch(); <-watched }() // before the store closes
	}
	stopReload := reloadOnHangup(srv, logger, build)
	defer stopReload()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return listenError(cfg.Listen, err)
	}
	if warning := exposure(cfg.Listen, cfg.AuthToken != "", cfg.PresetAuth, srv.Snapshot()); warning != "" {
		logger.Warn(warning)
	}
	logger.Info("llmproxy listening",
		"addr", "http://"+ln.Addr().String(),
		"version", versionString(),
		"transport", cfg.Transport,
		"token_set", cfg.AuthToken != "",
		"preset_auth", cfg.PresetAuth,
		"generic_mode", cfg.AuthToken != "")
	return srv.Serve(c.Context, ln)
}

// listenError explains why the listen address could not be taken.
func listenError(addr string, err error) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("cannot listen on %s: another program is using that port; stop it, or choose another address with --listen (LLMPROXY_LISTEN)", addr)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("cannot listen on %s: permission denied (ports below 1024 need privileges: use a higher port, or grant CAP_NET_BIND_SERVICE)", addr)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("cannot listen on %s: that address is not one of this machine's (use 127.0.0.1, or 0.0.0.0 for every interface)", addr)
	}
	return fmt.Errorf("cannot listen on %s: %w", addr, errors.Unwrap(err))
}

// reloadOnHangup re-reads the configuration on SIGHUP and swaps in its
// routing parts (presets, providers, models, client keys); running streams
// are untouched. A bad file keeps the running configuration, and the log
// says why.
func reloadOnHangup(srv *server.Server, logger *slog.Logger, build func() (*config.Config, error)) func() {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				cfg, err := build()
				if err == nil {
					err = srv.Reload(cfg)
				}
				if err != nil {
					logger.Error("reload failed: the running configuration stays", "error", describeErr(err))
				}
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(hup); close(done) }
}

// describeErr words a configuration error as the command line does.
func describeErr(err error) string {
	var se *config.SettingError
	if errors.As(err, &se) {
		return "bad setting " + describe(se.Setting) + ": " + se.Msg
	}
	return err.Error()
}

func versionString() string {
	if version != "" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		if v := info.Main.Version; v != "" && v != "(devel)" {
			return v
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return "dev"
}
