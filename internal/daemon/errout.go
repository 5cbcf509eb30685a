package daemon

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// printError writes one error line for whoever started autoipd, in the
// format -log-format asks for: "autoipd: msg" in text, or a JSON object
// like the daemon's log lines, so that a JSON log stays JSON to the end.
func printError(w io.Writer, format, msg string, attrs ...any) {
	if format == "json" {
		slog.New(slog.NewJSONHandler(w, nil)).Error(msg, attrs...)
		return
	}
	fmt.Fprintf(w, "autoipd: %s\n", msg)
	for i := 0; i+1 < len(attrs); i += 2 {
		if attrs[i] == "hint" {
			fmt.Fprintln(w, attrs[i+1])
		}
	}
}

// logFormatIn returns the -log-format a command line asks for, for errors
// met before it is parsed whole: "json" if it names json, else "text".
func logFormatIn(args []string) string {
	for i, a := range args {
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name != "log-format" || !strings.HasPrefix(a, "-") {
			continue
		}
		if !hasVal && i+1 < len(args) {
			val = args[i+1]
		}
		if val == "json" {
			return "json"
		}
	}
	return "text"
}
