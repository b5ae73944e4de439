"""Progress of a training run: a bar on a terminal, one plain line per evaluation otherwise (a log file
gets as many lines as there are evaluations, not one per refresh)."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, enabled: bool, total: int, done: int, label: str, stream=None):
        self.stream = stream or sys.stderr
        self.enabled, self.total, self.done, self.label = enabled, total, done, label
        self.start = time.perf_counter()
        self.bar = None
        if enabled and self.stream.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=done, desc=label, unit="eval", file=self.stream)

    def update(self, **values: float) -> None:
        """One evaluation done; ``values`` (e.g. return, success) are shown beside the count."""
        self.done += 1
        if not self.enabled:
            return
        text = {k: f"{v:.3f}" if abs(v) < 1e4 else f"{v:.3g}" for k, v in values.items()}
        if self.bar is not None:
            self.bar.set_postfix(**text)
            self.bar.update(1)
        else:
            fields = " ".join(f"{k}={v}" for k, v in text.items())
            elapsed = time.perf_counter() - self.start
            print(f"{self.label} eval {self.done}/{self.total} {fields} ({elapsed:.1f} s)", file=self.stream,
                  flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
