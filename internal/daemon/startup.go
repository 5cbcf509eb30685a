package daemon

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

// startupWatch keeps SIGINT, SIGTERM and the context honoured while the
// daemon starts: the first one is logged and acted on as soon as the
// current stage ends (the caller then stops cleanly); a second SIGINT or
// SIGTERM kills the process at once with that signal, should a stage ever
// hang (the kernel then drops the lock and the TAP). Every stage opens its
// files without blocking, so the second signal is a last resort.
type startupWatch struct {
	stage  atomic.Pointer[string]
	done   chan struct{}
	reason chan string
}

func watchStartup(ctx context.Context, sigc <-chan os.Signal, log *slog.Logger) *startupWatch {
	w := &startupWatch{done: make(chan struct{}), reason: make(chan string, 1)}
	w.enter("start")
	go func() {
		asked, ctxDone := "", ctx.Done()
		for {
			select {
			case <-w.done:
				w.reason <- asked
				return
			case <-ctxDone:
				ctxDone = nil
				if asked == "" {
					asked = "context: " + ctx.Err().Error()
				}
			case sig := <-sigc:
				switch {
				case sig == syscall.SIGHUP:
					log.Info("SIGHUP during start-up: nothing to re-announce yet", "stage", *w.stage.Load())
				case asked == "":
					asked = sig.String()
					log.Warn("signal during start-up: stopping as soon as the current stage ends", "signal", asked,
						"stage", *w.stage.Load(), "hint", "the same signal again exits at once")
				default:
					log.Error("second signal during start-up: exiting at once", "signal", sig.String(), "stage", *w.stage.Load())
					signal.Reset(sig)
					_ = syscall.Kill(os.Getpid(), sig.(syscall.Signal))
				}
			}
		}
	}()
	return w
}

// enter records the stage start-up is in, for the log.
func (w *startupWatch) enter(stage string) { w.stage.Store(&stage) }

// end stops watching and returns why the daemon must stop at once ("" if
// nothing asked it to).
func (w *startupWatch) end() string {
	close(w.done)
	return <-w.reason
}
