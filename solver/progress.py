"""Training progress: the course's log lines, and on a terminal a one-line bar with an ETA."""

from __future__ import annotations

import sys
import time

BAR_WIDTH = 24
# Redraw the bar at most this often (seconds), so printing never slows training down.
REDRAW_INTERVAL = 0.1


class Progress:
    """Writes log lines to ``stream``; if the stream is a terminal, also a live progress bar.

    Args:
        total: the number of iterations in the run.
        stream: where to write (sys.stdout by default).
        enabled: False silences everything.
        bar: force the bar on or off; None shows it only on a terminal.
    """

    def __init__(self, total, stream=None, enabled=True, bar=None):
        self.total = max(1, total)
        self.stream = stream if stream is not None else sys.stdout
        self.enabled = enabled
        isatty = getattr(self.stream, "isatty", lambda: False)
        self.bar = enabled and (isatty() if bar is None else bar)
        self._start = time.monotonic()
        self._first_done = None
        self._last_draw = 0.0
        self._bar_shown = False

    def log(self, message):
        """Print a full line (clearing the bar first, so the two never mix)."""
        if not self.enabled:
            return
        self._clear()
        print(message, file=self.stream, flush=True)

    def update(self, done, epoch, num_epochs, loss):
        """Redraw the bar after ``done`` of ``total`` iterations."""
        if not self.bar:
            return
        now = time.monotonic()
        if self._first_done is None:
            self._first_done, self._start = done, now
        if now - self._last_draw < REDRAW_INTERVAL and done < self.total:
            return
        self._last_draw = now
        frac = done / self.total
        filled = int(BAR_WIDTH * frac)
        rate = (done - self._first_done) / (now - self._start) if now > self._start else 0.0
        eta = (self.total - done) / rate if rate > 0 else float("nan")
        eta_text = "--:--" if eta != eta else f"{int(eta) // 60:02d}:{int(eta) % 60:02d}"
        line = (f"epoch {epoch}/{num_epochs} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
                f"{100 * frac:3.0f}% it {done}/{self.total} loss {loss:.4f} ETA {eta_text}")
        self.stream.write("\r" + line + "\x1b[K")
        self.stream.flush()
        self._bar_shown = True

    def close(self):
        """Remove the bar at the end of training."""
        self._clear()

    def _clear(self):
        if self._bar_shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._bar_shown = False
