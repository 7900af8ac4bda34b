"""An on/off switch, optionally read from an environment variable, overridable per thread."""

import contextlib
import os
import threading

OFF_VALUES = ("0", "false", "no", "off")


class Switch:
    """On unless the environment variable `env` (if any) says `0`, `false`, `no`
    or `off`; inside a `forced(...)` block (this thread), the innermost block decides."""

    def __init__(self, env: str | None = None):
        self.env = env
        self._local = threading.local()

    def enabled(self) -> bool:
        """Whether the switch is on here and now."""
        stack = getattr(self._local, "stack", None)
        if stack:
            return stack[-1]
        if self.env is None:
            return True
        return os.environ.get(self.env, "1").strip().lower() not in OFF_VALUES

    @contextlib.contextmanager
    def forced(self, enabled: bool = True):
        """Within the block (this thread), force the switch on or off."""
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        stack.append(bool(enabled))
        try:
            yield
        finally:
            stack.pop()
